//! The FIM module in-process: a real temporary tree, real inotify and fanotify, real SQLite, the
//! module run as the agent runs it (a budgeted task), its events read from the real queue.

mod acceptance;
mod budget;

use super::{DirectoryConfig, Fim, FimConfig};
use crate::pipeline::queue::Submission;
use crate::pipeline::{event_queue, EventSender};
use crate::runtime::alloc::AccountId;
use crate::runtime::budget::{account_for, Budgeted, MemoryAccount};
use crate::runtime::{Module, ModuleContext, ModuleError, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::fim::{ChangeType, FimChange, FimEvent};
use gatewatch_proto::Payload;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running module.
pub struct Harness {
    events: async_channel::Receiver<Submission>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<Result<(), ModuleError>>>,
    /// Every FIM event received so far, in order.
    pub log: Vec<FimEvent>,
    /// Events received but not yet matched by a wait.
    unclaimed: Vec<FimEvent>,
    /// The module's memory account.
    pub account: AccountId,
}

/// A configuration monitoring `root` with `dir` applied to its directory entry.
pub fn config_for(root: &Path, dir: impl FnOnce(&mut DirectoryConfig)) -> FimConfig {
    let mut d = DirectoryConfig {
        path: root.to_path_buf(),
        ..DirectoryConfig::default()
    };
    dir(&mut d);
    FimConfig {
        enabled: true,
        frequency_secs: 3600,
        scan_bytes_per_sec: 0,
        directories: vec![d],
        ..FimConfig::default()
    }
}

impl Harness {
    /// Starts the module on its own thread with state in `state`, charged to account `account`.
    pub fn start(config: FimConfig, state: &Path, account: &'static str) -> Harness {
        Self::start_with_queue(config, state, account, 256)
    }

    /// The same with a queue of `capacity` events.
    pub fn start_with_queue(
        config: FimConfig,
        state: &Path,
        account: &'static str,
        capacity: usize,
    ) -> Harness {
        Self::start_with_setup(config, state, account, capacity, || {})
    }

    /// The same, running `setup` on the module's thread first (to drop privileges, say).
    pub fn start_with_setup(
        config: FimConfig,
        state: &Path,
        account: &'static str,
        capacity: usize,
        setup: fn(),
    ) -> Harness {
        let (tx, rx) = event_queue(capacity);
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let id = account_for(account).expect("a free memory account");
        let state = state.to_path_buf();
        std::fs::create_dir_all(&state).unwrap();
        let thread = std::thread::spawn(move || {
            setup();
            let thread_memory = MemoryAccount::new(id, config.budget_bytes);
            let shutdown = Shutdown::new();
            let ctx = ModuleContext::new(
                EventSender::new("fim", tx),
                thread_memory,
                state,
                shutdown.clone(),
                Rc::new(|_: &str| None),
            );
            let mut module = Fim::new(config);
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
            unclaimed: Vec::new(),
            account: id,
        }
    }

    /// The next FIM event within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<FimEvent> {
        let recv = async { self.events.recv().await.ok() };
        let timer = async {
            async_io::Timer::after(timeout).await;
            None
        };
        let sub = smol::block_on(recv.or(timer))?;
        match sub.body.payload {
            Payload::Fim(event) => {
                self.log.push(event.clone());
                Some(event)
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// Waits for an event matching `want` (one received earlier and not yet matched counts);
    /// panics with the events seen after `timeout`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&FimEvent) -> bool,
    ) -> FimEvent {
        if let Some(i) = self.unclaimed.iter().position(&want) {
            return self.unclaimed.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(e) if want(&e) => return e,
                Some(e) => self.unclaimed.push(e),
                None => panic!("no {what} within {timeout:?}; events: {:#?}", self.log),
            }
        }
    }

    /// Waits for the change `event` of `path`.
    pub fn change(&mut self, path: &Path, event: ChangeType, timeout: Duration) -> FimChange {
        let p = path.to_string_lossy().into_owned();
        let what = format!("{event:?} {p}");
        match self.wait_for(
            &what,
            timeout,
            |e| matches!(e, FimEvent::Change(c) if c.path == p && c.event == event),
        ) {
            FimEvent::Change(c) => *c,
            _ => unreachable!(),
        }
    }

    /// Waits for the end of a scan.
    pub fn scan_ended(&mut self, timeout: Duration) -> FimEvent {
        self.wait_for("the end of a scan", timeout, |e| {
            matches!(e, FimEvent::ScanEnded { .. })
        })
    }

    /// Stops the module and waits for its thread.
    pub fn stop(mut self) -> Result<(), ModuleError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ModuleError> {
        let _ = self.stop.try_send(());
        // Keep draining so a module waiting on a full queue can see the stop.
        let events = self.events.clone();
        let drain = std::thread::spawn(move || while events.recv_blocking().is_ok() {});
        let result = match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(ModuleError::from("module panicked"))),
            None => Ok(()),
        };
        self.events.close();
        let _ = drain.join();
        result
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A temporary tree to monitor and a state directory beside it.
pub struct Tree {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub state: PathBuf,
}

impl Tree {
    /// An empty monitored directory.
    pub fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("watched");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&root).unwrap();
        Tree {
            root,
            state,
            _dir: dir,
        }
    }

    /// A path in the monitored directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}
