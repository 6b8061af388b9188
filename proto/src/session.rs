//! Messages of the event session on port 1514.
//!
//! ```text
//! agent                                   manager
//!   Hello{version, agent_id}        ──►
//!                                   ◄──   Challenge{version, nonce}
//!   Auth{proof = HMAC(key, nonce…)} ──►
//!                                   ◄──   Welcome{ack_up_to} | Refused{reason}
//!   Events{first_seq, records}      ──►
//!                                   ◄──   Ack{up_to}
//!   Keepalive{status}               ──►
//!                                   ◄──   KeepaliveAck
//!                                   ◄──   Command{id, command}
//!   CommandResult{id, outcome}      ──►
//! ```
//! The agent proves it holds the key issued at enrollment without sending it (see
//! `docs/adr/002-agent-authentication.md`).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What the agent sends to the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMessage<'a> {
    /// First message of a session.
    Hello { version: u16, agent_id: u32 },
    /// Answer to [`ManagerMessage::Challenge`]: see [`auth_proof`].
    Auth { proof: [u8; 32] },
    /// Consecutive events: `records[i]` has sequence number `first_seq + i` and is the postcard
    /// encoding of an [`crate::EventBody`], borrowed from the frame when decoding.
    Events {
        first_seq: u64,
        #[serde(
            borrow,
            deserialize_with = "crate::frame::bounded_vec",
            serialize_with = "crate::frame::byte_slices"
        )]
        records: Vec<&'a [u8]>,
    },
    /// Periodic sign of life, also carrying a short status.
    Keepalive { status: KeepaliveStatus },
    /// The result of a [`ManagerMessage::Command`].
    CommandResult { id: u64, outcome: CommandOutcome },
    /// The agent is closing the session on purpose (shutdown or restart).
    Goodbye,
}

/// What the manager sends to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagerMessage {
    /// Asks the agent to prove it holds its key.
    Challenge { version: u16, nonce: [u8; 32] },
    /// The session is open; the manager holds every event up to `ack_up_to` for this agent.
    Welcome { version: u16, ack_up_to: u64 },
    /// The session is refused; the agent should report `reason` and `detail` to its operator.
    Refused { reason: Refusal, detail: String },
    /// Every event up to `up_to` is stored durably.
    Ack { up_to: u64 },
    /// Answer to a keep-alive.
    KeepaliveAck,
    /// An order for the agent.
    Command { id: u64, command: Command },
}

/// Why the manager refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// No agent with that id is registered (never enrolled, or deleted).
    UnknownAgent,
    /// The proof did not match the agent's key.
    BadProof,
    /// The agent's credentials were revoked.
    Revoked,
    /// The agent speaks a protocol version the manager does not support.
    UnsupportedVersion,
    /// The manager is shedding load; try again later.
    Busy,
    /// The agent sent something out of order or undecodable.
    ProtocolViolation,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Refusal::UnknownAgent => {
                "the manager does not know this agent (deleted or never enrolled)"
            }
            Refusal::BadProof => "the agent key does not match the manager's record",
            Refusal::Revoked => "the agent's credentials were revoked",
            Refusal::UnsupportedVersion => "the manager does not speak this protocol version",
            Refusal::Busy => "the manager is busy",
            Refusal::ProtocolViolation => "protocol violation",
        })
    }
}

/// Status carried by a keep-alive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepaliveStatus {
    /// Agent software version.
    pub version: String,
    /// Seconds since the agent process started.
    pub uptime_secs: u64,
    /// Records waiting in the spool.
    pub spooled: u64,
    /// Records dropped since the agent's state was created.
    pub dropped_total: u64,
}

/// Orders the manager can give. Variants are appended, never reordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Restart the agent process.
    Restart,
    /// Run a command (argument vector, no shell) with a timeout; refused unless the agent has
    /// `manager.remote_commands = true`. Its output comes back as `command` events.
    Run {
        name: String,
        argv: Vec<String>,
        timeout_secs: u32,
    },
    /// Run an active response (Wazuh's `PUT /active-response`): `command` names a built-in
    /// response (optionally with Wazuh's timeout suffix, `firewall-drop600`) or, after a `!`, an
    /// executable in the agent's allow-listed directory; `alert` is the alert as JSON text.
    /// Refused unless the agent runs the `response` module.
    ActiveResponse {
        command: String,
        arguments: Vec<String>,
        alert: String,
    },
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// Accepted and carried out (or, for restart, about to be).
    Done,
    /// Refused by the agent's configuration.
    Refused { reason: String },
    /// Tried and failed.
    Failed { error: String },
}

/// The proof that an agent holds `key`: HMAC-SHA256 over a context string, the manager's nonce and
/// the agent id. Both sides compute it; only the proof travels.
pub fn auth_proof(key: &[u8], nonce: &[u8; 32], agent_id: u32) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"gatewatch-session-v1");
    mac.update(nonce);
    mac.update(&agent_id.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// Compares a received proof with the expected one in constant time.
pub fn proof_matches(key: &[u8], nonce: &[u8; 32], agent_id: u32, proof: &[u8; 32]) -> bool {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"gatewatch-session-v1");
    mac.update(nonce);
    mac.update(&agent_id.to_be_bytes());
    mac.verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_depends_on_key_nonce_and_id() {
        let nonce = [7u8; 32];
        let p = auth_proof(b"key-a", &nonce, 1);
        assert!(proof_matches(b"key-a", &nonce, 1, &p));
        assert!(!proof_matches(b"key-b", &nonce, 1, &p));
        assert!(!proof_matches(b"key-a", &[8u8; 32], 1, &p));
        assert!(!proof_matches(b"key-a", &nonce, 2, &p));
    }
}
