//! The agent-wide stop signal: set once (signal, restart command), awaited by every task.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// A cloneable handle on the stop signal. Single-threaded: it lives on the executor thread.
#[derive(Clone, Default)]
pub struct Shutdown(Rc<Inner>);

#[derive(Default)]
struct Inner {
    requested: Cell<bool>,
    event: event_listener::Event,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal; every waiter wakes. Idempotent.
    pub fn request(&self) {
        if !self.0.requested.replace(true) {
            self.0.event.notify(usize::MAX);
        }
    }

    /// Whether the signal has fired.
    pub fn is_requested(&self) -> bool {
        self.0.requested.get()
    }

    /// Completes when the signal fires (at once if it already has).
    pub async fn wait(&self) {
        loop {
            if self.is_requested() {
                return;
            }
            let listener = self.0.event.listen();
            if self.is_requested() {
                return;
            }
            listener.await;
        }
    }

    /// Sleeps for `duration` unless the signal fires first. Returns `true` if it slept the whole
    /// time, `false` if it was cut short by a stop.
    pub async fn sleep(&self, duration: Duration) -> bool {
        use futures_lite::FutureExt;
        let slept = async {
            async_io::Timer::after(duration).await;
            true
        };
        let stopped = async {
            self.wait().await;
            false
        };
        slept.or(stopped).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_is_cut_short_by_request() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let ex = smol::LocalExecutor::new();
        let full = smol::block_on(ex.run(async {
            let t = ex.spawn(async move { s2.sleep(Duration::from_secs(30)).await });
            s.request();
            t.await
        }));
        assert!(!full);
        assert!(s.is_requested());
    }
}
