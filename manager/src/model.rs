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

/// A time as the Wazuh API writes agent dates: `YYYY-MM-DDTHH:MM:SS+00:00` (UTC).
pub(crate) fn format_time_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "9999-12-31T23:59:59+00:00".to_string(),
    }
}

/// Parses the date forms the API accepts (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`,
/// `YYYY-MM-DDTHH:MM:SS` with an optional `Z` or `+00:00`) as UTC seconds since the epoch.
pub(crate) fn parse_time_secs(text: &str) -> Option<i64> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))
        .unwrap_or(text);
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (text, None),
    };
    let numbers = |s: &str, n: usize| -> Option<Vec<u32>> {
        let parts: Vec<u32> = s
            .split(['-', ':'])
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        (parts.len() == n).then_some(parts)
    };
    let d = numbers(date, 3)?;
    let c = match clock {
        Some(c) => numbers(c, 3)?,
        None => vec![0, 0, 0],
    };
    let month = time::Month::try_from(u8::try_from(d[1]).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(d[0]).ok()?, month, u8::try_from(d[2]).ok()?)
            .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(c[0]).ok()?,
        u8::try_from(c[1]).ok()?,
        u8::try_from(c[2]).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_the_wazuh_form_and_read_back() {
        let text = format_time_ms(1_700_000_000_123);
        assert_eq!(text, "2023-11-14T22:13:20+00:00");
        assert_eq!(parse_time_secs(&text), Some(1_700_000_000));
        assert_eq!(parse_time_secs("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time_secs("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_time_secs("2023-11-14"), Some(1_699_920_000));
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "2023-13-01",
            "2023-11",
            "yesterday",
            "2023-11-14T25:00:00",
            "7d",
        ] {
            assert_eq!(parse_time_secs(bad), None, "{bad}");
        }
    }
}
