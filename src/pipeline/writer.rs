//! The pipeline task: moves events from the bounded queue into the spool.
//!
//! It drains the queue in batches, encodes each event, appends it (with its cursor) to the spool,
//! then flushes the batch to the segment file and wakes the link. fsync is batched on a timer
//! (`buffer.fsync_interval_ms`) to spare flash. On shutdown it drains what is still queued.

use super::spool::{AppendError, Spool};
use super::{EventReceiver, OutRecord, Outbox, Submission};
use crate::runtime::Shutdown;
use event_listener::Event;
use futures_lite::FutureExt;
use gatewatch_proto::{AgentEvent, EventBody, Payload};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Events appended per batch before the task flushes and yields.
const BATCH: usize = 512;

/// Counters of the pipeline task.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events accepted into the spool since start.
    pub accepted: Cell<u64>,
    /// Events refused by the spool because they were larger than a segment.
    pub too_large: Cell<u64>,
}

/// The spool shared by the pipeline task and the link, with the wake-ups between them.
#[derive(Clone)]
pub struct SharedSpool {
    /// The spool itself.
    pub spool: Rc<RefCell<Spool>>,
    /// Notified when records were flushed (the link has something to send).
    pub new_records: Rc<Event>,
    /// Notified when acknowledgements removed records (a blocked writer may retry).
    pub space_freed: Rc<Event>,
}

impl SharedSpool {
    /// Wraps an opened spool.
    pub fn new(spool: Spool) -> Self {
        SharedSpool {
            spool: Rc::new(RefCell::new(spool)),
            new_records: Rc::default(),
            space_freed: Rc::default(),
        }
    }
}

/// The link's view of the shared spool: acks also wake a writer waiting for room.
impl Outbox for SharedSpool {
    fn read_after(
        &mut self,
        after_seq: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<OutRecord>,
    ) -> std::io::Result<()> {
        self.spool
            .borrow_mut()
            .read_after(after_seq, max_records, max_bytes, out)
    }

    fn ack(&mut self, up_to: u64) -> std::io::Result<()> {
        let result = self.spool.borrow_mut().ack(up_to);
        self.space_freed.notify(usize::MAX);
        result
    }

    fn acked(&self) -> u64 {
        self.spool.borrow().acked()
    }

    fn last_seq(&self) -> u64 {
        self.spool.borrow().last_seq()
    }

    fn pending(&self) -> u64 {
        self.spool.borrow().pending()
    }

    fn dropped_total(&self) -> u64 {
        self.spool.borrow().dropped_total()
    }
}

/// Bytes of an `Events` frame that are not record bodies (variant, sequence number, lengths).
const FRAME_OVERHEAD: usize = 32;

/// Settings of the pipeline task.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// How often the spool is fsynced while events arrive.
    pub fsync_interval: Duration,
    /// Largest encoded event: one must fit in one frame to the manager.
    pub max_record: usize,
}

impl WriterConfig {
    /// From the agent configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        WriterConfig {
            fsync_interval: Duration::from_millis(config.buffer.fsync_interval_ms),
            max_record: config
                .manager
                .max_frame_bytes
                .saturating_sub(FRAME_OVERHEAD),
        }
    }
}

/// Runs until shutdown, then drains the queue into the spool, flushes and syncs it.
pub async fn run(
    queue: EventReceiver,
    shared: SharedSpool,
    config: WriterConfig,
    stats: Rc<PipelineStats>,
    shutdown: Shutdown,
    tap: Option<Rc<super::tap::Tap>>,
) {
    let fsync_interval = config.fsync_interval;
    let mut encoded = Vec::with_capacity(512);
    let mut last_sync = Instant::now();
    let mut dirty = false;
    // One timer for the pending fsync, armed when the spool becomes dirty and kept across events:
    // registering a new timer wakes async-io's reactor thread, which per event costs more than
    // the event.
    let mut sync_timer = async_io::Timer::never();
    let mut sync_at: Option<Instant> = None;
    loop {
        let due = dirty.then(|| last_sync + fsync_interval);
        if due != sync_at || (due.is_some() && !sync_timer.will_fire()) {
            match due {
                Some(at) => sync_timer.set_at(at),
                None => sync_timer = async_io::Timer::never(),
            }
            sync_at = due;
        }
        let first = async { queue.recv().await.ok() }
            .or(async {
                shutdown.wait().await;
                None
            })
            .or(async {
                // Wake up for a pending fsync even when no event arrives.
                (&mut sync_timer).await;
                None
            })
            .await;
        let Some(first) = first else {
            if shutdown.is_requested() {
                break;
            }
            sync(&shared, &mut dirty, &mut last_sync);
            continue;
        };
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(submission) = next.take() {
            if let Some(tap) = &tap {
                tap.offer(&submission.body);
            }
            append(
                &shared,
                submission,
                &mut encoded,
                &config,
                &stats,
                &shutdown,
            )
            .await;
            taken += 1;
            if taken < BATCH {
                next = queue.try_recv().ok();
            }
        }
        flush(&shared);
        dirty = true;
        if last_sync.elapsed() >= fsync_interval {
            sync(&shared, &mut dirty, &mut last_sync);
        }
    }
    // Stopping: modules have been told to stop; keep what they already handed over.
    while let Ok(submission) = queue.try_recv() {
        if let Some(tap) = &tap {
            tap.offer(&submission.body);
        }
        append(
            &shared,
            submission,
            &mut encoded,
            &config,
            &stats,
            &shutdown,
        )
        .await;
    }
    flush(&shared);
    sync(&shared, &mut true, &mut last_sync);
}

async fn append(
    shared: &SharedSpool,
    submission: Submission,
    encoded: &mut Vec<u8>,
    config: &WriterConfig,
    stats: &PipelineStats,
    shutdown: &Shutdown,
) {
    if let Err(e) = gatewatch_proto::event::encode_body(&submission.body, encoded) {
        log::error!(
            "event from {} could not be encoded: {e}",
            submission.body.module
        );
        return;
    }
    if encoded.len() > config.max_record {
        // It could never be sent: say so instead of spooling it.
        stats.too_large.set(stats.too_large.get() + 1);
        log::error!(
            "event from {} of {} bytes exceeds the {}-byte frame limit; reported as shed",
            submission.body.module,
            encoded.len(),
            config.max_record
        );
        let bytes = encoded.len() as u64;
        report_too_large(shared, &submission.body, bytes, encoded);
        return;
    }
    loop {
        let result = shared
            .spool
            .borrow_mut()
            .append(encoded, submission.cursor.as_ref());
        match result {
            Ok(_) => {
                stats.accepted.set(stats.accepted.get() + 1);
                return;
            }
            Err(AppendError::Full) => {
                // `when_full = block`: wait for the manager to acknowledge and make room. The
                // listener is created before flushing so no wake-up is missed.
                let freed = shared.space_freed.listen();
                flush(shared);
                let stopped = async {
                    freed.await;
                    false
                }
                .or(async {
                    shutdown.wait().await;
                    true
                })
                .await;
                if stopped {
                    // Not spooled, so its source cursor was not stored either: a source with a
                    // cursor reads it again after the restart.
                    log::warn!(
                        "spool full while stopping: an event from {} was not spooled",
                        submission.body.module
                    );
                    return;
                }
            }
            Err(AppendError::TooLarge { len, max }) => {
                stats.too_large.set(stats.too_large.get() + 1);
                log::error!(
                    "event from {} of {len} bytes exceeds the spool's record limit of {max}",
                    submission.body.module
                );
                report_too_large(shared, &submission.body, len as u64, encoded);
                return;
            }
            Err(AppendError::BadCursor { key, reason }) => {
                // A module bug, not an input problem: keep the event, lose only the cursor.
                log::error!(
                    "cursor {key} of {} refused by the spool: {reason}",
                    submission.body.module
                );
                if shared.spool.borrow_mut().append(encoded, None).is_ok() {
                    stats.accepted.set(stats.accepted.get() + 1);
                }
                return;
            }
            Err(AppendError::Io(e)) => {
                log::error!("spool write failed: {e}; retrying in 1 s");
                if !shutdown.sleep(Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    }
}

/// An event too large for the spool is replaced by a small `agent.shed` event saying so.
fn report_too_large(shared: &SharedSpool, body: &EventBody, bytes: u64, encoded: &mut Vec<u8>) {
    let shed = EventBody {
        time_ms: body.time_ms,
        module: "agent".into(),
        payload: Payload::Agent(AgentEvent::Shed {
            module: body.module.clone(),
            what: format!("{} event larger than a spool record", body.payload.kind()),
            bytes,
        }),
    };
    if gatewatch_proto::event::encode_body(&shed, encoded).is_ok() {
        if let Err(e) = shared.spool.borrow_mut().append(encoded, None) {
            log::error!("could not report an oversized event: {e}");
        }
    }
}

fn flush(shared: &SharedSpool) {
    if let Err(e) = shared.spool.borrow_mut().flush() {
        log::error!("spool flush failed: {e}");
    }
    shared.new_records.notify(usize::MAX);
}

fn sync(shared: &SharedSpool, dirty: &mut bool, last_sync: &mut Instant) {
    if *dirty {
        if let Err(e) = shared.spool.borrow_mut().sync() {
            log::error!("spool fsync failed: {e}");
        }
        *dirty = false;
    }
    *last_sync = Instant::now();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WhenFull;
    use crate::pipeline::spool::SpoolConfig;
    use crate::pipeline::{event_queue, EventSender};
    use gatewatch_proto::GeneratorEvent;

    fn spool_in(dir: &std::path::Path) -> SharedSpool {
        let config = SpoolConfig {
            max_bytes: 1 << 20,
            segment_bytes: 64 << 10,
            when_full: WhenFull::DropOldest,
        };
        SharedSpool::new(Spool::open(dir, config, Box::new(|_| b"drop".to_vec())).unwrap())
    }

    fn event(n: u64, body_bytes: usize) -> Payload {
        Payload::Generator(GeneratorEvent {
            stream: "s".into(),
            n,
            body: "x".repeat(body_bytes),
        })
    }

    #[test]
    fn queued_events_are_spooled_in_order_and_drained_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let shared = spool_in(dir.path());
        let (tx, rx) = event_queue(64);
        let sender = EventSender::new("test", tx);
        let shutdown = Shutdown::new();
        let stats = Rc::new(PipelineStats::default());
        let config = WriterConfig {
            fsync_interval: Duration::from_secs(1),
            max_record: 4096,
        };
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            let task = ex.spawn(run(
                rx,
                shared.clone(),
                config,
                stats.clone(),
                shutdown.clone(),
                None,
            ));
            for n in 0..10 {
                sender.send(event(n, 10)).await.unwrap();
            }
            shutdown.request();
            task.await;
        }));
        let mut out = Vec::new();
        shared
            .spool
            .borrow_mut()
            .read_after(0, 100, 1 << 20, &mut out)
            .unwrap();
        let numbers: Vec<u64> = out
            .iter()
            .map(|r| {
                match gatewatch_proto::event::decode_body(&r.body)
                    .unwrap()
                    .payload
                {
                    Payload::Generator(g) => g.n,
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        assert_eq!(numbers, (0..10).collect::<Vec<_>>());
        assert_eq!(stats.accepted.get(), 10);
    }

    #[test]
    fn event_larger_than_a_frame_is_replaced_by_a_shed_report() {
        let dir = tempfile::tempdir().unwrap();
        let shared = spool_in(dir.path());
        let (tx, rx) = event_queue(4);
        let sender = EventSender::new("test", tx);
        let shutdown = Shutdown::new();
        let stats = Rc::new(PipelineStats::default());
        let config = WriterConfig {
            fsync_interval: Duration::from_secs(1),
            max_record: 1000,
        };
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            let task = ex.spawn(run(
                rx,
                shared.clone(),
                config,
                stats.clone(),
                shutdown.clone(),
                None,
            ));
            sender.send(event(0, 5000)).await.unwrap();
            shutdown.request();
            task.await;
        }));
        let mut out = Vec::new();
        shared
            .spool
            .borrow_mut()
            .read_after(0, 100, 1 << 20, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        let body = gatewatch_proto::event::decode_body(&out[0].body).unwrap();
        assert!(
            matches!(body.payload, Payload::Agent(AgentEvent::Shed { ref module, .. }) if module == "test")
        );
        assert_eq!(stats.too_large.get(), 1);
    }
}
