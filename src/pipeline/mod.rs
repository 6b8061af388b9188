//! The path of an event from a module to the link: bounded queue → spool → rate limiter.
//!
//! A module hands an event (and, optionally, the source cursor that produced it) to its
//! [`EventSender`]. The pipeline task writes it to the on-disk [`spool`], which assigns the
//! sequence number; from then on the event survives a crash. The link reads the spool through the
//! [`Outbox`] trait and trims it only when the manager acknowledges. A [`tap::Tap`] may copy
//! chosen modules' events to a local consumer on the way (lossy, never blocking).

pub mod queue;
pub mod spool;

pub use queue::{event_queue, EventReceiver, EventSender, Submission};

/// A source position stored atomically with the event it produced (e.g. a log file offset), so a
/// restarted module resumes exactly after the last event the spool accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Namespaced key, `<module>/<source>`.
    pub key: String,
    /// Opaque position bytes (at most [`MAX_CURSOR_BYTES`]).
    pub value: Vec<u8>,
}

/// Largest cursor value the spool stores.
pub const MAX_CURSOR_BYTES: usize = 512;

/// One spooled record as the link sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    /// Sequence number assigned by the spool.
    pub seq: u64,
    /// Postcard encoding of a [`gatewatch_proto::EventBody`].
    pub body: Vec<u8>,
}

/// What the link needs from the spool. Implemented by [`spool::Spool`].
pub trait Outbox {
    /// Appends to `out` the records with sequence numbers greater than `after_seq`, in order,
    /// stopping at `max_records` records or before exceeding `max_bytes` of bodies (but always
    /// returning at least one record when one exists). Records that were dropped are skipped.
    fn read_after(
        &mut self,
        after_seq: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<OutRecord>,
    ) -> std::io::Result<()>;
    /// The manager holds every record up to `up_to`: they may be removed.
    fn ack(&mut self, up_to: u64) -> std::io::Result<()>;
    /// Highest sequence number acknowledged so far (0 = none).
    fn acked(&self) -> u64;
    /// Highest sequence number assigned so far (0 = none).
    fn last_seq(&self) -> u64;
    /// Records held that are not yet acknowledged.
    fn pending(&self) -> u64;
    /// Records dropped (spool full) since the state directory was created.
    fn dropped_total(&self) -> u64;
}

pub mod ratelimit;
pub mod tap;
pub mod writer;
