//! Wire types and framing shared by the gatewatch agent and manager.
//!
//! This crate does no I/O. It defines the messages exchanged on the event port (1514) and the
//! enrollment port (1515), the typed event payloads, and a total, bounded frame codec: decoding
//! untrusted bytes returns an error, never panics, and never allocates beyond the frame limit.
//!
//! ```
//! use gatewatch_proto::{frame, AgentMessage, PROTOCOL_VERSION};
//!
//! let hello = AgentMessage::Hello { version: PROTOCOL_VERSION, agent_id: 7 };
//! let bytes = frame::encode(&hello, frame::DEFAULT_MAX_FRAME).unwrap();
//! let mut decoder = frame::FrameDecoder::new(frame::DEFAULT_MAX_FRAME);
//! decoder.push(&bytes).unwrap();
//! let body = decoder.next_frame().unwrap().unwrap();
//! let back: AgentMessage = frame::decode_body(&body).unwrap();
//! assert_eq!(back, hello);
//! ```

pub mod cloud;
pub mod containers;
pub mod enroll;
pub mod event;
pub mod fim;
pub mod frame;
pub mod inventory;
pub mod rootcheck;
pub mod sca;
pub mod session;

pub use enroll::{EnrollRefusal, EnrollRequest, EnrollResponse};
pub use event::{
    AgentEvent, CommandEvent, EventBody, FieldValue, GeneratorEvent, LogBatch, LogEntry, LogEvent,
    LogField, LogText, Payload,
};
pub use session::{
    AgentMessage, Command, CommandOutcome, KeepaliveStatus, ManagerMessage, Refusal,
};

/// Version of the session protocol spoken on 1514 and 1515. A manager accepts every version up to
/// its own; an agent refuses a manager that answers with an older version than it needs.
pub const PROTOCOL_VERSION: u16 = 1;

/// Formats an agent id the way Wazuh does (`001`, `042`, `1234`).
pub fn format_agent_id(id: u32) -> String {
    format!("{id:03}")
}
