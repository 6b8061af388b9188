//! After a commit, newly stored events go out: one JSON line each to `events.jsonl` (for a SIEM
//! to tail), and a copy to every live subscriber.
//!
//! This runs after the SQLite commit and never fails the store: the database is the record, the
//! feed is a copy. A subscriber that does not keep up loses the newest events, never blocks us.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_channel::{Sender, TrySendError};

use crate::{ManagerError, StoredEvent};

/// Capacity of each subscriber's channel.
pub(crate) const SUBSCRIBER_CAPACITY: usize = 1024;

/// The live subscribers, shared with the manager handle that adds them.
#[derive(Clone, Default)]
pub(crate) struct Subscribers(Arc<Mutex<Vec<Sender<StoredEvent>>>>);

impl Subscribers {
    /// Adds a subscriber and returns its receiving end.
    pub(crate) fn subscribe(&self) -> async_channel::Receiver<StoredEvent> {
        let (tx, rx) = async_channel::bounded(SUBSCRIBER_CAPACITY);
        self.lock().push(tx);
        rx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender<StoredEvent>>> {
        // A panic while holding this lock cannot leave the list inconsistent: keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn broadcast(&self, events: &[StoredEvent]) {
        let mut subs = self.lock();
        subs.retain(|tx| {
            for event in events {
                match tx.try_send(event.clone()) {
                    Ok(()) | Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }
}

/// The JSON-lines file and the subscribers.
pub(crate) struct Feed {
    path: PathBuf,
    file: File,
    subscribers: Subscribers,
    line: String,
}

impl Feed {
    /// Opens (creating) `path` for appending.
    pub(crate) fn open(path: &Path, subscribers: Subscribers) -> Result<Self, ManagerError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| ManagerError::file(path, "cannot open", e))?;
        Ok(Feed {
            path: path.to_path_buf(),
            file,
            subscribers,
            line: String::new(),
        })
    }

    /// Appends the events (one write for the batch) and hands them to subscribers.
    pub(crate) fn publish(&mut self, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        self.line.clear();
        for event in events {
            json_line(event, &mut self.line);
        }
        if let Err(e) = self.file.write_all(self.line.as_bytes()) {
            log::error!(
                "cannot append {} events to {}: {e}",
                events.len(),
                self.path.display()
            );
        }
        self.subscribers.broadcast(events);
    }
}

/// Appends one `events.jsonl` line (with its newline). The payload is already JSON (we made it).
fn json_line(e: &StoredEvent, out: &mut String) {
    use std::fmt::Write as _;
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let _ = writeln!(
        out,
        r#"{{"agent":{{"id":{},"name":{}}},"seq":{},"time_ms":{},"module":{},"kind":{},"payload":{}}}"#,
        string(&gatewatch_proto::format_agent_id(e.agent_id)),
        string(&e.agent_name),
        e.seq,
        e.time_ms,
        string(&e.module),
        string(&e.kind),
        e.payload_json
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> StoredEvent {
        StoredEvent {
            agent_id: 1,
            agent_name: "gw\"1".into(),
            seq,
            time_ms: 5,
            module: "generator".into(),
            kind: "generator.event".into(),
            payload_json: r#"{"Generator":{"stream":"s","n":0,"body":"b"}}"#.into(),
        }
    }

    #[test]
    fn json_line_is_one_valid_object_with_agent_id_and_name() {
        let mut line = String::new();
        json_line(&event(3), &mut line);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["agent"]["id"], "001");
        assert_eq!(v["agent"]["name"], "gw\"1");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["payload"]["Generator"]["n"], 0);
    }

    #[test]
    fn lagging_subscriber_loses_newest_and_closed_one_is_removed() {
        let subs = Subscribers::default();
        let slow = subs.subscribe();
        drop(subs.subscribe());
        let events: Vec<_> = (1..=SUBSCRIBER_CAPACITY as u64 + 5).map(event).collect();
        subs.broadcast(&events);
        assert_eq!(subs.lock().len(), 1);
        assert_eq!(slow.len(), SUBSCRIBER_CAPACITY);
        assert_eq!(slow.try_recv().unwrap().seq, 1);
    }
}
