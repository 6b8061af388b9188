//! A bounded, lossy copy of chosen modules' events for local consumers (the `response` module's
//! rules), taken by the pipeline task as it spools them.
//!
//! The tap must never slow the pipeline down: it offers a copy with `try_send`, and when its
//! queue is full the copy is skipped and counted. Only events of the listed modules are copied
//! (so nothing is cloned for the others). Spooling is unaffected: a skipped copy still reaches
//! the manager.

use gatewatch_proto::EventBody;
use std::cell::Cell;
use std::rc::Rc;

/// The consumer's side.
pub type TapReceiver = async_channel::Receiver<EventBody>;

/// The pipeline's side of a tap.
pub struct Tap {
    modules: Vec<String>,
    tx: async_channel::Sender<EventBody>,
    skipped: Cell<u64>,
}

impl Tap {
    /// A tap copying the events of `modules`, holding at most `capacity` copies.
    pub fn new(modules: Vec<String>, capacity: usize) -> (Rc<Tap>, TapReceiver) {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        let tap = Tap {
            modules,
            tx,
            skipped: Cell::new(0),
        };
        (Rc::new(tap), rx)
    }

    /// Offers a copy of `body` if its module is tapped; never waits.
    pub fn offer(&self, body: &EventBody) {
        if !self.modules.contains(&body.module) {
            return;
        }
        if let Err(async_channel::TrySendError::Full(_)) = self.tx.try_send(body.clone()) {
            let skipped = self.skipped.get() + 1;
            self.skipped.set(skipped);
            // Logged at powers of two so a flood does not become a log flood.
            if skipped.is_power_of_two() {
                log::warn!("event tap full: {skipped} copies skipped so far");
            }
        }
    }

    /// Copies skipped because the consumer was behind.
    pub fn skipped(&self) -> u64 {
        self.skipped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::{GeneratorEvent, Payload};

    fn body(module: &str) -> EventBody {
        EventBody {
            time_ms: 1,
            module: module.into(),
            payload: Payload::Generator(GeneratorEvent {
                stream: "s".into(),
                n: 0,
                body: String::new(),
            }),
        }
    }

    #[test]
    fn only_tapped_modules_are_copied() {
        let (tap, rx) = Tap::new(vec!["logcollector".into()], 4);
        tap.offer(&body("fim"));
        tap.offer(&body("logcollector"));
        assert_eq!(rx.len(), 1);
        assert_eq!(
            rx.try_recv().map(|b| b.module).ok().as_deref(),
            Some("logcollector")
        );
    }

    #[test]
    fn a_full_tap_skips_and_counts_without_waiting() {
        let (tap, rx) = Tap::new(vec!["logcollector".into()], 2);
        for _ in 0..5 {
            tap.offer(&body("logcollector"));
        }
        assert_eq!((rx.len(), tap.skipped()), (2, 3));
    }
}
