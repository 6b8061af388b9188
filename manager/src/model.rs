//! Plain data the manager hands out: stored events, agent records, command errors.

use std::fmt;

/// An event as stored (and appended to `events.jsonl`), handed to subscribers after its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Agent id (`format_agent_id` gives Wazuh's `001` form).
    pub agent_id: u32,
    /// Agent name at the time the event was stored.
    pub agent_name: String,
    /// The agent's sequence number of this event.
    pub seq: u64,
    /// The agent's timestamp (ms since the Unix epoch); the receive time for malformed records.
    pub time_ms: u64,
    /// Producing module (`unknown` for a record that could not be decoded).
    pub module: String,
    /// Event kind, e.g. `generator.event`, or `malformed`.
    pub kind: String,
    /// The payload as JSON (serde_json of the proto `Payload`, or `{"error":…,"hex":…}`).
    pub payload_json: String,
}

/// Connection state of an agent, as the Wazuh API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// A session is open now.
    Active,
    /// It has connected before, but no session is open.
    Disconnected,
    /// Enrolled, never connected.
    NeverConnected,
}

impl AgentStatus {
    /// Wazuh's spelling: `active`, `disconnected`, `never_connected`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Disconnected => "disconnected",
            AgentStatus::NeverConnected => "never_connected",
        }
    }
}

/// One registered agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Agent id, from 1 (000 is the manager).
    pub id: u32,
    /// Unique agent name.
    pub name: String,
    /// Address the agent enrolled from.
    pub ip: String,
    /// The agent's secret key (64 hex characters). Secret: never log or list it.
    pub key: String,
    /// Groups the agent belongs to.
    pub groups: Vec<String>,
    /// Registration time, ms since the Unix epoch.
    pub registered_ms: u64,
    /// Last session start or keep-alive, ms since the Unix epoch.
    pub last_keepalive_ms: Option<u64>,
    /// Agent software version from its last keep-alive.
    pub version: Option<String>,
    /// Whether a session is open now.
    pub status: AgentStatus,
}

/// A command could not be queued: no live session for that agent (or its session has stopped
/// reading, which the API reports the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotConnected {
    /// The agent the command was for.
    pub agent_id: u32,
}

impl fmt::Display for NotConnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "agent {} is not connected",
            gatewatch_proto::format_agent_id(self.agent_id)
        )
    }
}

impl std::error::Error for NotConnected {}

/// An agent just registered (by enrollment or by [`crate::ManagerHandle::register_agent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The new agent id.
    pub id: u32,
    /// The agent name.
    pub name: String,
    /// The agent's secret key (64 hex characters).
    pub key: String,
}

/// Why an agent was not registered (nothing was stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRefused {
    /// The reason, as enrollment reports it.
    pub reason: gatewatch_proto::EnrollRefusal,
    /// Details for the operator.
    pub detail: String,
}

impl fmt::Display for RegisterRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for RegisterRefused {}

/// Milliseconds since the Unix epoch, from the manager's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
