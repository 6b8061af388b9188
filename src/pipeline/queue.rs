//! The bounded in-memory queue between modules and the spool.
//!
//! Its capacity is fixed at start (`buffer.queue_capacity`); a module whose send finds it full
//! waits, so a burst slows the sources down instead of growing memory.

use super::Cursor;
use gatewatch_proto::{EventBody, Payload};

/// An event on its way to the spool, with the cursor to store beside it.
#[derive(Debug)]
pub struct Submission {
    pub body: EventBody,
    pub cursor: Option<Cursor>,
}

/// The sending side, one clone per module.
#[derive(Clone)]
pub struct EventSender {
    module: &'static str,
    tx: async_channel::Sender<Submission>,
}

/// The receiving side, owned by the pipeline task.
pub type EventReceiver = async_channel::Receiver<Submission>;

/// The pipeline has stopped; the event was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueClosed;

impl std::fmt::Display for QueueClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the event pipeline has stopped")
    }
}

impl std::error::Error for QueueClosed {}

/// Creates a queue holding at most `capacity` events.
pub fn event_queue(capacity: usize) -> (async_channel::Sender<Submission>, EventReceiver) {
    async_channel::bounded(capacity.max(1))
}

impl EventSender {
    /// A sender that stamps events with `module`.
    pub fn new(module: &'static str, tx: async_channel::Sender<Submission>) -> Self {
        EventSender { module, tx }
    }

    /// The module name this sender stamps on events.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Queues an event, waiting while the queue is full.
    pub async fn send(&self, payload: Payload) -> Result<(), QueueClosed> {
        self.send_with_cursor(payload, None).await
    }

    /// Queues an event together with the source cursor that produced it.
    pub async fn send_with_cursor(
        &self,
        payload: Payload,
        cursor: Option<Cursor>,
    ) -> Result<(), QueueClosed> {
        let body = EventBody {
            time_ms: now_ms(),
            module: self.module.to_string(),
            payload,
        };
        self.tx
            .send(Submission { body, cursor })
            .await
            .map_err(|_| QueueClosed)
    }

    /// Queues an event if there is room now; gives it back otherwise.
    pub fn try_send(&self, payload: Payload) -> Result<(), Payload> {
        let body = EventBody {
            time_ms: now_ms(),
            module: self.module.to_string(),
            payload,
        };
        self.tx
            .try_send(Submission { body, cursor: None })
            .map_err(|e| e.into_inner().body.payload)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
