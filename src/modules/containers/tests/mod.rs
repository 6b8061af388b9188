//! Behaviour of the containers module against a real Docker engine (see [`engine`]), and its
//! memory bound over 100,000 events.

mod acceptance;
mod budget;
mod engine;

use super::{Containers, ContainersConfig};
use crate::pipeline::queue::Submission;
use crate::pipeline::{event_queue, EventSender};
use crate::runtime::alloc::AccountId;
use crate::runtime::budget::{account_for, Budgeted, MemoryAccount};
use crate::runtime::{Module, ModuleContext, ModuleError, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::containers::ContainerEvent;
use gatewatch_proto::Payload;
use std::path::Path;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The module's settings for a test: watching `socket`, reconnecting quickly.
pub fn config_for(socket: &Path) -> ContainersConfig {
    ContainersConfig {
        enabled: true,
        socket: socket.to_path_buf(),
        reconnect_min_ms: 100,
        reconnect_max_ms: 1000,
        inventory_interval_secs: 0,
        ..ContainersConfig::default()
    }
}

/// The module running on its own thread (its own executor), its events collected here.
pub struct Harness {
    events: async_channel::Receiver<Submission>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<Result<(), ModuleError>>>,
    /// Every event received so far.
    pub log: Vec<ContainerEvent>,
    /// The module's memory account.
    pub account: AccountId,
}

impl Harness {
    /// Starts the module with `config`, charging its memory to the account `account`.
    pub fn start(config: ContainersConfig, account: &'static str, capacity: usize) -> Harness {
        let (tx, rx) = event_queue(capacity);
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let id = account_for(account).expect("a free memory account");
        let thread = std::thread::spawn(move || {
            let memory = MemoryAccount::new(id, config.budget_bytes);
            let shutdown = Shutdown::new();
            let ctx = ModuleContext::new(
                EventSender::new("containers", tx),
                memory,
                std::env::temp_dir(),
                shutdown.clone(),
                Rc::new(|_: &str| None),
            );
            let mut module = Containers::new(config);
            let stopper = async {
                let _ = stop_rx.recv().await;
                shutdown.request();
                std::future::pending::<Result<(), ModuleError>>().await
            };
            let run = Budgeted::new(id, module.run(&ctx));
            smol::block_on(run.or(stopper))
        });
        Harness {
            events: rx,
            stop: stop_tx,
            thread: Some(thread),
            log: Vec::new(),
            account: id,
        }
    }

    /// The next event, or `None` after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<ContainerEvent> {
        let submission = match self.events.try_recv() {
            Ok(submission) => submission,
            Err(_) => {
                let recv = async { self.events.recv().await.ok() };
                let timer = async {
                    async_io::Timer::after(timeout).await;
                    None
                };
                smol::block_on(recv.or(timer))?
            }
        };
        match submission.body.payload {
            Payload::Container(event) => {
                self.log.push(event.clone());
                Some(event)
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// Waits for an event matching `want` (already received ones count too).
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&ContainerEvent) -> bool,
    ) -> ContainerEvent {
        if let Some(e) = self.log.iter().find(|e| want(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(e) if want(&e) => return e,
                Some(_) => {}
                None => panic!("no {what} within {timeout:?}; events: {:#?}", self.log),
            }
        }
    }

    /// Receives events for `time` (to see that nothing more comes).
    pub fn settle(&mut self, time: Duration) {
        let deadline = Instant::now() + time;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.next(left).is_none() {
                break;
            }
        }
    }

    /// Stops the module and returns how its task ended.
    pub fn stop(mut self) -> Result<(), ModuleError> {
        let _ = self.stop.try_send(());
        // Keep receiving so a module waiting on a full queue can see the stop.
        let events = self.events.clone();
        let thread = self.thread.take().expect("the module thread");
        while !thread.is_finished() {
            let _ = events.try_recv();
            std::thread::sleep(Duration::from_millis(5));
        }
        thread
            .join()
            .unwrap_or_else(|_| Err(ModuleError("the module thread panicked".into())))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
    }
}

/// A name unique to this test run, for containers, tags, networks and volumes.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
