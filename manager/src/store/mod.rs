//! The store: one thread owns the SQLite connection and runs jobs sent to it over a channel, in
//! order. Sessions and the enrollment service await the answers; the SQLite work never runs on an
//! executor thread.

mod db;
mod events;
mod feed;
mod registry;

use std::path::Path;
use std::thread::JoinHandle;

use async_channel::{Receiver, Sender};

pub(crate) use db::{AgentRow, Db, NewEvent, RegisterOutcome};
pub(crate) use feed::Subscribers;
pub(crate) use registry::{AddOutcome, Conflict, NewAgent, Replace};

use crate::ManagerError;

/// Jobs waiting for the store thread before senders wait.
const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// The answer of a job queued by [`Store::submit`], not yet received.
pub(crate) struct Pending<T>(Receiver<Result<T, ManagerError>>);

impl<T> Pending<T> {
    /// Waits for the job's answer. Cancel-safe: dropping the future before it is ready leaves the
    /// answer to a later call.
    pub(crate) async fn answer(&self) -> Result<T, ManagerError> {
        self.0.recv().await.map_err(|_| ManagerError::Stopped)?
    }
}

/// A cheap, cloneable handle to the store thread.
#[derive(Clone)]
pub(crate) struct Store {
    jobs: Sender<Job>,
}

/// Opens `manager.db` and `events.jsonl` in `dir` and starts the store thread.
pub(crate) fn start(
    dir: &Path,
    subscribers: Subscribers,
) -> Result<(Store, JoinHandle<()>), ManagerError> {
    let feed = feed::Feed::open(&dir.join("events.jsonl"), subscribers)?;
    let db = Db::open(&dir.join("manager.db"), feed)?;
    let (tx, rx) = async_channel::bounded(QUEUE);
    let thread = std::thread::Builder::new()
        .name("gatewatch-store".into())
        .spawn(move || run(db, rx))
        .map_err(|e| ManagerError::store("cannot start the store thread", e))?;
    Ok((Store { jobs: tx }, thread))
}

fn run(mut db: Db, jobs: Receiver<Job>) {
    while let Ok(job) = jobs.recv_blocking() {
        job(&mut db);
        if db.stopping {
            break;
        }
    }
    log::debug!("store thread stopped");
}

impl Store {
    /// Runs `f` on the store thread and waits for its answer.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, ManagerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, ManagerError> + Send + 'static,
    {
        self.submit(f).await?.answer().await
    }

    /// Queues `f` on the store thread and returns at once; its answer is awaited later with
    /// [`Pending::answer`], so the caller can do other work while the store thread runs it.
    pub(crate) async fn submit<T, F>(&self, f: F) -> Result<Pending<T>, ManagerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, ManagerError> + Send + 'static,
    {
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move |db| {
            let _ = tx.try_send(f(db));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| ManagerError::Stopped)?;
        Ok(Pending(rx))
    }

    /// Like [`Store::call`], blocking the calling thread (for synchronous API methods; not to be
    /// used on an executor thread).
    pub(crate) fn call_blocking<T, F>(&self, f: F) -> Result<T, ManagerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, ManagerError> + Send + 'static,
    {
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move |db| {
            let _ = tx.try_send(f(db));
        });
        self.jobs
            .send_blocking(job)
            .map_err(|_| ManagerError::Stopped)?;
        rx.recv_blocking().map_err(|_| ManagerError::Stopped)?
    }

    /// Queues `f` without waiting for it (failures are logged by the job itself).
    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: FnOnce(&mut Db) + Send + 'static,
    {
        if self.jobs.try_send(Box::new(f)).is_err() {
            log::warn!("store queue full or stopped: a background write was skipped");
        }
    }

    /// Asks the store thread to finish the jobs queued so far and stop.
    pub(crate) fn stop(&self) {
        let _ = self
            .jobs
            .send_blocking(Box::new(|db: &mut Db| db.stopping = true));
    }
}
