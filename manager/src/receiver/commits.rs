//! A session's events on their way into SQLite, as a two-stage pipeline: while the store thread
//! commits one group of `Events` frames, the frames arriving meanwhile are decoded (postcard, then
//! JSON) on the session's thread and become the next group, committed as soon as the store thread
//! is free.
//!
//! A frame is acknowledged only once the commit holding its records has returned
//! (`synchronous=FULL`: the records are on disk), so a crash of the manager never loses an acked
//! record. The decoding and the commit overlap instead of taking turns, and the groups grow with
//! the load: one frame when the link is quiet, everything that arrived during the last commit
//! when it is busy (one fsync for all of them).

use gatewatch_proto::event;
use gatewatch_proto::format_agent_id;

use super::SessionError;
use crate::model::now_ms;
use crate::store::{NewEvent, Pending, Store};

/// Most frames decoded and waiting for the running commit; beyond it the session stops reading
/// until the commit is done. The agent sends at most its window (`MAX_FRAMES_IN_FLIGHT`, 64 frames)
/// unacked, so this bounds the waiting group by what one agent can have in flight.
const MAX_WAITING_FRAMES: usize = 64;

/// The waiting group and the running commit of one session.
pub(super) struct Commits {
    agent_id: u32,
    name: String,
    /// Events of the frames received since the running commit started.
    waiting: Vec<NewEvent>,
    waiting_frames: usize,
    /// Last sequence number of the waiting frames: what their commit acknowledges.
    waiting_last: Option<u64>,
    /// When the first waiting frame arrived (the rows' `received_ms`).
    waiting_since_ms: u64,
    /// The commit the store thread is working on, and the sequence number it acknowledges.
    running: Option<(Pending<usize>, u64)>,
}

impl Commits {
    /// An empty pipeline for the session of `agent_id` (`name` for logs and the feed).
    pub(super) fn new(agent_id: u32, name: &str) -> Self {
        Commits {
            agent_id,
            name: name.to_string(),
            waiting: Vec::new(),
            waiting_frames: 0,
            waiting_last: None,
            waiting_since_ms: 0,
            running: None,
        }
    }

    /// Whether another frame may be decoded now (or the session should wait for the commit).
    pub(super) fn accepts_frames(&self) -> bool {
        self.waiting_frames < MAX_WAITING_FRAMES
    }

    /// Whether nothing is waiting and nothing is being committed.
    pub(super) fn is_idle(&self) -> bool {
        self.running.is_none() && self.waiting_last.is_none()
    }

    /// Whether a commit is running.
    pub(super) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Decodes the records of one `Events` frame into the waiting group. Returns `false` for a
    /// frame without records (nothing to store).
    pub(super) fn add(&mut self, first_seq: u64, records: &[&[u8]]) -> Result<bool, SessionError> {
        let Some(count) = u64::try_from(records.len()).ok().filter(|&n| n > 0) else {
            return Ok(false);
        };
        let last = first_seq
            .checked_add(count - 1)
            .filter(|&last| i64::try_from(last).is_ok())
            .ok_or_else(|| {
                SessionError::Violation(format!("sequence numbers from {first_seq} overflow"))
            })?;
        let received = now_ms();
        if self.waiting_last.is_none() {
            self.waiting_since_ms = received;
        }
        let before = self.waiting.len();
        self.waiting.extend(
            records
                .iter()
                .zip(first_seq..)
                .map(|(r, seq)| decode_record(seq, r, received)),
        );
        let malformed = self.waiting[before..]
            .iter()
            .filter(|e| e.kind == "malformed")
            .count();
        if malformed > 0 {
            log::warn!(
                "agent {} ({}): {malformed} malformed records in {first_seq}..={last}",
                format_agent_id(self.agent_id),
                self.name
            );
        }
        self.waiting_frames += 1;
        self.waiting_last = Some(last);
        Ok(true)
    }

    /// Hands the waiting group to the store thread if it is free and something waits.
    pub(super) async fn start(&mut self, store: &Store) -> Result<(), SessionError> {
        if self.running.is_some() {
            return Ok(());
        }
        let Some(last) = self.waiting_last.take() else {
            return Ok(());
        };
        let events = std::mem::take(&mut self.waiting);
        self.waiting_frames = 0;
        let (agent_id, name, received) = (self.agent_id, self.name.clone(), self.waiting_since_ms);
        let pending = store
            .submit(move |db| db.store_events(agent_id, &name, events, received))
            .await?;
        self.running = Some((pending, last));
        Ok(())
    }

    /// Waits for the running commit and returns the sequence number it acknowledges; never ready
    /// when none runs. Cancel-safe: dropped before the commit ends, the commit is still awaited
    /// by the next call.
    pub(super) async fn committed(&mut self) -> Result<u64, SessionError> {
        let Some((pending, last)) = &self.running else {
            return std::future::pending().await;
        };
        let last = *last;
        let fresh = pending.answer().await?;
        self.running = None;
        log::debug!(
            "agent {}: stored {fresh} new events up to {last}",
            format_agent_id(self.agent_id)
        );
        Ok(last)
    }
}

/// An event to store for one record: its decoded payload, or a `malformed` event holding the
/// decoding error and the record's bytes in hex (never dropped).
pub(crate) fn decode_record(seq: u64, bytes: &[u8], received_ms: u64) -> NewEvent {
    let error = match event::decode_body(bytes) {
        Ok(body) => match serde_json::to_string(&body.payload) {
            Ok(payload_json) => {
                let kind = body.payload.kind().to_string();
                return NewEvent {
                    seq,
                    time_ms: body.time_ms,
                    module: body.module,
                    kind,
                    payload_json,
                };
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    let payload_json = serde_json::json!({ "error": error, "hex": hex::encode(bytes) }).to_string();
    NewEvent {
        seq,
        time_ms: received_ms,
        module: "unknown".into(),
        kind: "malformed".into(),
        payload_json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::{EventBody, GeneratorEvent, Payload};

    fn generator_record(n: u64) -> Vec<u8> {
        let body = EventBody {
            time_ms: 77,
            module: "generator".into(),
            payload: Payload::Generator(GeneratorEvent {
                stream: "s".into(),
                n,
                body: "b".into(),
            }),
        };
        let mut bytes = Vec::new();
        event::encode_body(&body, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn decodable_record_keeps_agent_time_module_and_kind() {
        let e = decode_record(9, &generator_record(4), 1000);
        assert_eq!(
            (e.seq, e.time_ms, e.module.as_str(), e.kind.as_str()),
            (9, 77, "generator", "generator.event")
        );
        let v: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
        assert_eq!(v["Generator"]["n"], 4);
    }

    #[test]
    fn undecodable_record_becomes_a_malformed_event_with_its_bytes() {
        let e = decode_record(3, &[0xff, 0xfe], 1000);
        assert_eq!((e.kind.as_str(), e.time_ms), ("malformed", 1000));
        let v: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
        assert_eq!(v["hex"], "fffe");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }

    #[test]
    fn frames_added_wait_as_one_group_acknowledged_by_the_last_sequence_number() {
        let mut commits = Commits::new(1, "gw");
        let (a, b) = (generator_record(1), generator_record(2));
        assert!(commits.add(1, &[&a, &b]).unwrap());
        assert!(commits.add(3, &[&a]).unwrap());
        assert!(!commits.add(4, &[]).unwrap());
        assert_eq!(
            (
                commits.waiting.len(),
                commits.waiting_frames,
                commits.waiting_last
            ),
            (3, 2, Some(3))
        );
        assert!(!commits.is_idle());
    }

    #[test]
    fn sequence_numbers_past_the_signed_range_are_a_violation() {
        let mut commits = Commits::new(1, "gw");
        let a = generator_record(1);
        assert!(matches!(
            commits.add(i64::MAX as u64, &[&a, &a]),
            Err(SessionError::Violation(_))
        ));
        assert!(commits.is_idle());
    }
}
