//! Pacing: a scan sleeps between batches of probes so that it stays under a share of one CPU.

use std::time::Duration;

/// Counts probes and pauses after each batch for as long as the batch's CPU time, scaled so that
/// busy time is at most `share` percent of the wall time.
pub struct Pacer {
    share: u32,
    batch: u32,
    count: u32,
    batch_start: Duration,
    paused: Duration,
}

impl Pacer {
    /// A pacer keeping to `share_percent` (clamped to 1–100) with `batch` probes between pauses.
    pub fn new(share_percent: u8, batch: u32) -> Self {
        Pacer {
            share: u32::from(share_percent.clamp(1, 100)),
            batch: batch.max(1),
            count: 0,
            batch_start: cpu_time(),
            paused: Duration::ZERO,
        }
    }

    /// Counts one probe; pauses when a batch is complete.
    pub async fn tick(&mut self) {
        self.count += 1;
        if self.count >= self.batch {
            self.pause().await;
        }
    }

    /// Counts `n` probes at once (e.g. the bytes of a read, in units of a probe).
    pub async fn tick_n(&mut self, n: u32) {
        self.count = self.count.saturating_add(n);
        if self.count >= self.batch {
            self.pause().await;
        }
    }

    /// Ends the current batch: sleeps on a timer (other tasks run meanwhile) in proportion to the
    /// CPU time the batch used. At a share of 100 it only yields.
    pub async fn pause(&mut self) {
        let used = cpu_time().saturating_sub(self.batch_start);
        let sleep = used * (100 - self.share) / self.share;
        if sleep.is_zero() {
            futures_lite::future::yield_now().await;
        } else {
            smol::Timer::after(sleep).await;
            self.paused += sleep;
        }
        self.count = 0;
        self.batch_start = cpu_time();
    }

    /// Total time spent in pauses.
    pub fn paused(&self) -> Duration {
        self.paused
    }
}

/// CPU time of the calling thread: the executor's thread, so other threads' work is not charged
/// to the scan (and work of other tasks does not happen inside a batch, which never awaits).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
