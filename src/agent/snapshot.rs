//! Builds the status report served to `gatewatch status`.

use crate::enroll::Credentials;
use crate::link::LinkStats;
use crate::pipeline::writer::{PipelineStats, SharedSpool};
use crate::pipeline::{Outbox, Submission};
use crate::runtime::alloc::{self, AccountId};
use crate::runtime::status::{ModuleReport, StatusReport};
use crate::runtime::supervisor::ModuleStatus;
use std::rc::Rc;
use std::time::Instant;

/// Everything the report reads.
pub struct Snapshot {
    pub started: Instant,
    pub credentials: Credentials,
    pub modules: Vec<Rc<ModuleStatus>>,
    pub link: Rc<LinkStats>,
    pub pipeline: Rc<PipelineStats>,
    pub spool: SharedSpool,
    pub queue: async_channel::Sender<Submission>,
    pub spool_max_bytes: u64,
}

impl Snapshot {
    /// The report as of now.
    pub fn report(&self) -> StatusReport {
        let spool = self.spool.spool.borrow();
        StatusReport {
            version: crate::VERSION.into(),
            agent_id: self.credentials.agent_id,
            agent_name: self.credentials.name.clone(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            link_state: format!("{:?}", self.link.state()).to_ascii_lowercase(),
            manager: self.link.manager(),
            last_error: self.link.last_error(),
            modules: self
                .modules
                .iter()
                .map(|m| ModuleReport {
                    name: m.name.into(),
                    state: m.state().as_str().into(),
                    failures: m.failures(),
                    current_bytes: m.memory.current() as u64,
                    peak_bytes: m.memory.peak() as u64,
                    budget_bytes: m.memory.budget() as u64,
                })
                .collect(),
            core_current_bytes: alloc::current_bytes(AccountId::CORE) as u64,
            core_peak_bytes: alloc::peak_bytes(AccountId::CORE) as u64,
            queue_depth: self.queue.len() as u64,
            queue_capacity: self.queue.capacity().unwrap_or(0) as u64,
            spool_pending: spool.pending(),
            spool_bytes: spool.bytes_on_disk(),
            spool_max_bytes: self.spool_max_bytes,
            generated: self.pipeline.accepted.get(),
            sent: self.link.sent(),
            acked_seq: spool.acked(),
            dropped: spool.dropped_total(),
        }
    }
}
