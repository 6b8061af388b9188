//! Events: what a module reports, as typed payloads.
//!
//! The agent stores each event in its spool as the postcard encoding of an [`EventBody`], under a
//! sequence number that the spool assigns. New payload variants are only ever appended, so a newer
//! manager decodes what an older agent sends.

use serde::{Deserialize, Serialize};

/// One event as a module produced it; the sequence number travels beside it on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// Milliseconds since the Unix epoch, from the agent's clock when the event was made.
    pub time_ms: u64,
    /// Name of the module that produced it (`agent` for the agent's own events).
    pub module: String,
    /// What happened.
    pub payload: Payload,
}

/// The typed content of an event. Variants are appended, never reordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The agent's own life: start, stop, failures, budgets, drops, floods.
    Agent(AgentEvent),
    /// Numbered synthetic events from the `generator` module (demos, tests, benchmarks).
    Generator(GeneratorEvent),
    /// System inventory rows and their changes (`inventory` module). Boxed: rows are large and
    /// would make every payload as big as the largest.
    Inventory(Box<crate::inventory::InventoryEvent>),
    /// Security configuration assessment results (`sca` module). Boxed, as above.
    Sca(Box<crate::sca::ScaEvent>),
    /// A log line (or a group of lines) from the `logcollector` module.
    Log(LogEvent),
    /// A run of a configured command, from the `command` module.
    Command(CommandEvent),
    /// File integrity monitoring (`fim` module).
    Fim(crate::fim::FimEvent),
    /// Consecutive entries of one log file, read in one turn (`logcollector` module). One event
    /// per read rather than per line: the source, the cursor and the event's framing are paid
    /// once per batch, which is what lets the collector ship hundreds of thousands of lines a
    /// second.
    LogBatch(LogBatch),
    /// An action of the `response` module (active response) and its result. Boxed, as above.
    Response(Box<ResponseEvent>),
    /// Container engine events, findings and inventory (`containers` module).
    Container(crate::containers::ContainerEvent),
    /// Records read from cloud providers' security logs (`cloud` module).
    Cloud(crate::cloud::CloudEvent),
    /// Rootkit and anomaly detection (`rootcheck` module). Boxed: findings are large.
    Rootcheck(Box<crate::rootcheck::RootcheckEvent>),
}

impl Payload {
    /// A short, stable name of the event kind, e.g. `agent.dropped` or `generator.event`.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Agent(a) => a.kind(),
            Payload::Generator(_) => "generator.event",
            Payload::Inventory(i) => i.kind(),
            Payload::Sca(s) => s.kind(),
            Payload::Log(_) => "log.line",
            Payload::Command(c) => c.kind(),
            Payload::Fim(f) => f.kind(),
            Payload::LogBatch(_) => "log.batch",
            Payload::Response(r) => r.outcome.kind(),
            Payload::Container(c) => c.kind(),
            Payload::Cloud(c) => c.kind(),
            Payload::Rootcheck(r) => r.kind(),
        }
    }
}

/// Events the agent reports about itself. They travel the same path as module events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The agent started (after enrollment, before modules run).
    Started {
        version: String,
        name: String,
        modules: Vec<String>,
    },
    /// The agent is stopping on request (signal or command).
    Stopping { reason: String },
    /// A module returned an error or panicked out of its loop and will be restarted.
    ModuleFailed {
        module: String,
        error: String,
        failures: u32,
        restart_in_ms: u64,
    },
    /// A module reached its memory budget threshold and was told to shed work.
    BudgetPressure {
        module: String,
        current_bytes: u64,
        peak_bytes: u64,
        budget_bytes: u64,
    },
    /// The spool was full, so its oldest records were removed before the manager acknowledged
    /// them. `count` records with sequence numbers `first_seq..=last_seq` are lost.
    Dropped {
        count: u64,
        first_seq: u64,
        last_seq: u64,
    },
    /// More events are waiting than the rate limit lets out; they wait in the spool.
    Flood {
        backlog: u64,
        events_per_second: u32,
    },
    /// The backlog of a flood has drained back under the threshold.
    FloodEnded { backlog: u64, lasted_secs: u64 },
    /// A module shed work to stay within its budget (what it skipped, in its own words).
    Shed {
        module: String,
        what: String,
        bytes: u64,
    },
}

impl AgentEvent {
    /// Kind name, see [`Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::Started { .. } => "agent.started",
            AgentEvent::Stopping { .. } => "agent.stopping",
            AgentEvent::ModuleFailed { .. } => "agent.module_failed",
            AgentEvent::BudgetPressure { .. } => "agent.budget_pressure",
            AgentEvent::Dropped { .. } => "agent.dropped",
            AgentEvent::Flood { .. } => "agent.flood",
            AgentEvent::FloodEnded { .. } => "agent.flood_ended",
            AgentEvent::Shed { .. } => "agent.shed",
        }
    }
}

/// A numbered synthetic event; `n` counts from 0 per generator stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorEvent {
    pub stream: String,
    pub n: u64,
    pub body: String,
}

/// Text read from a log or a command: kept as a string when it is UTF-8, as the exact bytes
/// otherwise (never mangled by a lossy conversion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogText {
    /// Valid UTF-8.
    Text(String),
    /// Bytes that are not valid UTF-8, as read.
    Bytes(Vec<u8>),
}

impl LogText {
    /// Wraps `bytes`, as text when they are UTF-8.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => LogText::Text(text),
            Err(e) => LogText::Bytes(e.into_bytes()),
        }
    }

    /// The bytes, whichever form they are kept in.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            LogText::Text(t) => t.as_bytes(),
            LogText::Bytes(b) => b,
        }
    }
}

/// A log entry: one line, or several grouped by the source's format (multi-line, audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Where it came from: the file path, the source's alias, or `journald`.
    pub source: String,
    /// The entry; grouped lines are joined with `\n`.
    pub text: LogText,
    /// The entry was longer than the configured maximum and was cut.
    pub truncated: bool,
    /// Parsed fields (`json` lines, flattened with dotted names; journal fields) and labels.
    pub fields: Vec<LogField>,
}

/// Consecutive entries of one source, in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    /// Where they came from: the file path or the source's alias.
    pub source: String,
    /// The entries, oldest first.
    pub entries: Vec<LogEntry>,
}

/// One entry of a [`LogBatch`]: a line, or several grouped by the source's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The entry; grouped lines are joined with `\n`.
    pub text: LogText,
    /// The entry was longer than the configured maximum and was cut.
    pub truncated: bool,
    /// Parsed fields (`json` lines, flattened with dotted names) and labels.
    pub fields: Vec<LogField>,
}

impl LogBatch {
    /// The batch as one [`LogEvent`] per entry (what a consumer that wants lines reads).
    pub fn into_events(self) -> impl Iterator<Item = LogEvent> {
        let source = self.source;
        self.entries.into_iter().map(move |e| LogEvent {
            source: source.clone(),
            text: e.text,
            truncated: e.truncated,
            fields: e.fields,
        })
    }
}

/// One named field of a [`LogEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogField {
    /// Dotted path (`user.name`, `tags.0`), a journal field name, or a label key.
    pub name: String,
    /// Its value.
    pub value: FieldValue,
}

/// A scalar field value. Numbers keep their text, so nothing is lost to a float conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldValue {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string.
    Text(String),
    /// An empty JSON object or array (which has no scalar inside to carry its path).
    Empty,
}

/// What the `command` module reports about a configured (or manager-pushed) command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandEvent {
    /// Output of a run: one line, or the whole output, per the entry's setting.
    Output {
        name: String,
        text: LogText,
        truncated: bool,
    },
    /// A run ended: its exit code (or the signal that ended it) and whether the timeout fired.
    Finished {
        name: String,
        exit_code: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        output_bytes: u64,
        truncated: bool,
        millis: u64,
    },
    /// The command was not run (wrong executable hash, executable missing, spawn failure).
    Refused { name: String, reason: String },
}

impl CommandEvent {
    /// Kind name, see [`Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            CommandEvent::Output { .. } => "command.output",
            CommandEvent::Finished { .. } => "command.finished",
            CommandEvent::Refused { .. } => "command.refused",
        }
    }
}

/// One active-response action (or its reversal) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// The action's id (a quarantined file is restored by it).
    pub id: String,
    /// The response: `firewall-drop`, `host-deny`, `kill`, `quarantine`, `disable-account`,
    /// `null-route`, `restore`, or `!<script>` for a custom one.
    pub command: String,
    /// What it acts on: an address, a process, a path, an account.
    pub target: String,
    /// The action itself, or its reversal.
    pub phase: ResponsePhase,
    /// What started it: `manager`, `rule:<name>`, or `timeout` for a reversal.
    pub trigger: String,
    /// Seconds until the reversal (0: none).
    pub timeout_secs: u64,
    /// What happened.
    pub outcome: ResponseOutcome,
}

/// Whether a [`ResponseEvent`] is the action or its reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponsePhase {
    /// The action (Wazuh's `add`).
    Add,
    /// The reversal when the timeout ends (Wazuh's `delete`).
    Delete,
}

/// What became of an active-response action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOutcome {
    /// Carried out.
    Done,
    /// Dry-run mode: what would have been done, not done.
    DryRun,
    /// The same action is already in effect: its timeout was extended instead.
    Extended,
    /// Tried and failed (the tool's error output).
    Failed { error: String },
    /// Not tried (safety rule, unknown command, bad target).
    Refused { reason: String },
}

impl ResponseOutcome {
    /// Kind name, see [`Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ResponseOutcome::Done => "response.done",
            ResponseOutcome::DryRun => "response.dry_run",
            ResponseOutcome::Extended => "response.extended",
            ResponseOutcome::Failed { .. } => "response.failed",
            ResponseOutcome::Refused { .. } => "response.refused",
        }
    }
}

/// Encodes an event body as stored in the spool and sent on the wire.
pub fn encode_body(body: &EventBody, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    out.clear();
    let encoded = postcard::serialize_with_flavor(body, crate::frame::Append(out));
    if encoded.is_err() {
        out.clear();
    }
    encoded
}

/// Decodes an event body received from an agent (untrusted bytes: errors, never panics).
pub fn decode_body(bytes: &[u8]) -> Result<EventBody, postcard::Error> {
    postcard::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips() {
        let body = EventBody {
            time_ms: 1_700_000_000_000,
            module: "agent".into(),
            payload: Payload::Agent(AgentEvent::Dropped {
                count: 3,
                first_seq: 4,
                last_seq: 6,
            }),
        };
        let mut buf = Vec::new();
        encode_body(&body, &mut buf).unwrap();
        assert_eq!(decode_body(&buf).unwrap(), body);
        assert_eq!(body.payload.kind(), "agent.dropped");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let body = EventBody {
            time_ms: 1,
            module: "generator".into(),
            payload: Payload::Generator(GeneratorEvent {
                stream: "s".into(),
                n: 9,
                body: "x".repeat(50),
            }),
        };
        let mut buf = Vec::new();
        encode_body(&body, &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(decode_body(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }
}
