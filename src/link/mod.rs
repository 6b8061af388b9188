//! The link: the agent's session with its manager on port 1514.
//!
//! [`run`] keeps one session open at a time, trying the managers in order, and sends what the
//! spool holds (through the [`Outbox`] trait) as `Events` frames; the spool is trimmed only when
//! the manager acknowledges. Per connection:
//!
//! ```text
//! TLS (pinned CA) ─► Hello ─► Challenge ─► Auth{HMAC proof} ─► Welcome{ack_up_to} | Refused
//!   then concurrently:  reader (Ack, KeepaliveAck, Command)  ║  writer (Events, Keepalive, CommandResult)
//!                       watchdog (silence ≥ reconnect)       ║  shutdown → Goodbye
//! ```
//! A refusal of the agent's identity (`UnknownAgent`, `BadProof`, `Revoked`) is final: [`run`]
//! returns [`LinkError::Refused`] and the caller stops. Every other failure (unreachable, refused
//! certificate, garbage, silence) is followed by a jittered exponential back-off, never a tight
//! loop. Event sending is rate limited; control traffic is not.

mod backoff;
mod batch;
mod gather;
mod session;

pub use backoff::Backoff;

use crate::config::{BufferConfig, ManagerConfig};
use crate::enroll::Credentials;
use crate::pipeline::ratelimit::{FloodMonitor, RateLimiter};
use crate::pipeline::{EventSender, Outbox};
use crate::runtime::shutdown::Shutdown;
use crate::tls::{TlsBuffers, TlsClientConfig, Verification};
use gatewatch_proto::{Command, CommandOutcome, Refusal};
use session::{SessionContext, SessionEnd};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Settings of the link, usually made by [`LinkConfig::from_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Manager addresses (host names or IP literals), tried in order.
    pub managers: Vec<String>,
    /// Event port (1514).
    pub port: u16,
    /// Interval between keep-alives.
    pub keepalive: Duration,
    /// Silence from the manager after which the session is dropped and re-opened.
    pub reconnect: Duration,
    /// Largest frame body sent or accepted.
    pub max_frame: usize,
    /// Events sent per second (0 = no limit).
    pub events_per_second: u32,
    /// Backlog at which one flood event is reported (0 = never).
    pub flood_threshold: u64,
    /// Most records in one `Events` frame.
    pub max_batch_records: usize,
    /// Most frame bytes sent and not yet acknowledged.
    pub max_unacked_bytes: usize,
    /// First back-off delay after a failure (doubles, ±50 % jitter). Default 1 s.
    pub backoff_min: Duration,
    /// Longest back-off delay. Default 60 s.
    pub backoff_max: Duration,
}

/// Frames sent and not yet acknowledged, at most. The manager acknowledges a group of frames after
/// its commit and decodes the next group meanwhile: the window must hold both groups, or the link
/// waits for every commit.
pub const MAX_FRAMES_IN_FLIGHT: usize = 64;

/// Default [`LinkConfig::max_batch_records`].
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 256;

impl LinkConfig {
    /// The link settings of an agent configuration (reconnect time as Wazuh forces it).
    pub fn from_config(manager: &ManagerConfig, buffer: &BufferConfig) -> Self {
        LinkConfig {
            managers: manager.addresses.clone(),
            port: manager.port,
            keepalive: Duration::from_secs(manager.keepalive_secs.max(1)),
            reconnect: Duration::from_secs(manager.effective_reconnect_secs().max(1)),
            max_frame: manager.max_frame_bytes,
            events_per_second: buffer.events_per_second,
            flood_threshold: buffer.flood_threshold,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            // Frames in flight cost the agent no memory (they stay in the spool until acked), and
            // each one waits for the manager's commit: a wide window keeps the link busy.
            max_unacked_bytes: MAX_FRAMES_IN_FLIGHT * manager.max_frame_bytes,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Where the link is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkState {
    /// Opening a session.
    #[default]
    Connecting,
    /// A session is open (after Welcome).
    Connected,
    /// Waiting before the next attempt.
    Backoff,
    /// The manager refused this agent's identity; the link has stopped.
    Refused,
}

/// Counters and state of the link, read by `gatewatch status` and tests. Single-threaded.
#[derive(Debug, Default)]
pub struct LinkStats {
    state: Cell<LinkState>,
    manager: RefCell<Option<String>>,
    sent: Cell<u64>,
    acked: Cell<u64>,
    connects: Cell<u64>,
    keepalives: Cell<u64>,
    last_error: RefCell<Option<String>>,
}

impl LinkStats {
    /// Fresh statistics (state `Connecting`, counters 0).
    pub fn new() -> Self {
        Self::default()
    }
    /// Current state.
    pub fn state(&self) -> LinkState {
        self.state.get()
    }
    /// `address:port` of the manager of the current (or last) session.
    pub fn manager(&self) -> Option<String> {
        self.manager.borrow().clone()
    }
    /// Records sent since start (a record re-sent after a reconnect counts again).
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }
    /// Highest sequence number the manager acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.get()
    }
    /// Sessions opened (Welcome received) since start.
    pub fn connects(&self) -> u64 {
        self.connects.get()
    }
    /// Keep-alives sent since start.
    pub fn keepalives_sent(&self) -> u64 {
        self.keepalives.get()
    }
    /// The last failure, in words.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.borrow().clone()
    }

    fn set_state(&self, state: LinkState) {
        self.state.set(state);
    }
    fn set_error(&self, error: String) {
        *self.last_error.borrow_mut() = Some(error);
    }
}

/// What the link does with a manager's command; its outcome is sent back.
pub type CommandHandler = Box<dyn FnMut(&Command) -> CommandOutcome>;

/// Why the link stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// No manager address is configured.
    NoManagers,
    /// A manager refused this agent's identity.
    Refused {
        manager: String,
        reason: Refusal,
        detail: String,
    },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::NoManagers => {
                f.write_str("no manager address configured (manager.addresses / WAZUH_MANAGER)")
            }
            LinkError::Refused {
                manager,
                reason,
                detail,
            } => {
                write!(f, "manager {manager} refused this agent: {reason}")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                f.write_str(
                    "; the agent stops: enroll it again (`gatewatch enroll`), restore its client.keys, \
                     or set enrollment.reenroll_when_refused = true",
                )
            }
        }
    }
}

impl std::error::Error for LinkError {}

/// Whether a refusal concerns the agent's identity (final) rather than the moment (retry).
fn is_fatal(reason: Refusal) -> bool {
    matches!(
        reason,
        Refusal::UnknownAgent | Refusal::BadProof | Refusal::Revoked
    )
}

/// Runs the link until `shutdown` (returns `Ok` promptly, after a Goodbye when connected) or until
/// a manager refuses the agent's identity.
#[allow(clippy::too_many_arguments)] // the link's collaborators, each given by the runtime
pub async fn run(
    cfg: LinkConfig,
    creds: Credentials,
    outbox: Rc<RefCell<dyn Outbox>>,
    new_records: Rc<event_listener::Event>,
    stats: Rc<LinkStats>,
    mut on_command: CommandHandler,
    agent_events: EventSender,
    shutdown: Shutdown,
) -> Result<(), LinkError> {
    if cfg.managers.is_empty() {
        return Err(LinkError::NoManagers);
    }
    let mut tls_cfg = TlsClientConfig::new(Verification::PinnedCa {
        ca_der: creds.manager_ca_der.clone(),
    });
    tls_cfg.timeout = cfg.reconnect.min(tls_cfg.timeout);
    let ctx = SessionContext {
        cfg: &cfg,
        creds: &creds,
        tls_cfg: &tls_cfg,
        outbox: &outbox,
        new_records: &new_records,
        stats: &stats,
        agent_events: &agent_events,
        shutdown: &shutdown,
        started: Instant::now(),
    };
    let mut buffers = TlsBuffers::new();
    let mut limiter = RateLimiter::new(cfg.events_per_second);
    let mut flood = FloodMonitor::new(cfg.flood_threshold, cfg.events_per_second);
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    loop {
        for manager in &cfg.managers {
            if shutdown.is_requested() {
                return Ok(());
            }
            stats.set_state(LinkState::Connecting);
            let end = session::serve(
                &ctx,
                manager,
                &mut buffers,
                &mut on_command,
                &mut limiter,
                &mut flood,
            )
            .await;
            match end {
                SessionEnd::Shutdown => return Ok(()),
                SessionEnd::Refused {
                    manager,
                    reason,
                    detail,
                } if is_fatal(reason) => {
                    let error = LinkError::Refused {
                        manager,
                        reason,
                        detail,
                    };
                    log::error!("{error}");
                    stats.set_state(LinkState::Refused);
                    stats.set_error(error.to_string());
                    return Err(error);
                }
                SessionEnd::Refused {
                    manager,
                    reason,
                    detail,
                } => {
                    let error =
                        format!("manager {manager} turned the session down: {reason} ({detail})");
                    log::warn!("{error}");
                    stats.set_error(error);
                }
                SessionEnd::Failed { welcomed, error } => {
                    log::warn!("{error}");
                    stats.set_error(error);
                    if welcomed {
                        // The session worked: start again from the preferred manager, soon.
                        backoff.reset();
                        break;
                    }
                }
            }
        }
        stats.set_state(LinkState::Backoff);
        let delay = backoff.next_delay();
        log::info!("reconnecting to the manager in {} ms", delay.as_millis());
        if !shutdown.sleep(delay).await {
            return Ok(());
        }
    }
}
