//! Assembles and runs the agent: credentials, spool, pipeline, link, modules, status, signals.
//!
//! Start-up order: state directory → credentials (enrolling when there are none) → spool →
//! tasks. Stop order (SIGTERM/SIGINT or a restart command): an `agent.stopping` event, modules
//! stop, the pipeline drains the queue into the spool and syncs it, the link gets up to two
//! seconds to deliver what is pending, says goodbye and closes. All within five seconds.

mod modules;
mod snapshot;

use crate::config::{Config, RestartMode};
use crate::enroll::Credentials;
use crate::link::{self, LinkConfig, LinkStats};
use crate::pipeline::spool::{DropReport, Spool, SpoolConfig};
use crate::pipeline::writer::{self, PipelineStats, SharedSpool};
use crate::pipeline::{event_queue, EventSender, Outbox};
use crate::runtime::budget::{account_for, charged_to, MemoryAccount};
use crate::runtime::module::CursorLookup;
use crate::runtime::supervisor::{self, ModuleStatus};
use crate::runtime::{status, ModuleContext, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::{AgentEvent, Command, CommandOutcome, EventBody, Payload};
use smol::LocalExecutor;
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped on request.
    Stopped,
    /// A restart was ordered; the caller re-executes or exits per [`RestartMode`].
    Restart(RestartMode),
}

/// A failure that stops the agent, with a message for the operator.
#[derive(Debug)]
pub struct AgentError(pub String);

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AgentError {}

/// Time the link gets, once modules stopped, to deliver what is pending.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Why [`run_on`] stopped with an error.
enum Failure {
    /// The manager refused this agent's identity (deleted, unknown, wrong key).
    Refused(link::LinkError),
    /// Anything else.
    Other(AgentError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(e) => e.fmt(f),
            Failure::Other(e) => e.fmt(f),
        }
    }
}

impl From<AgentError> for Failure {
    fn from(e: AgentError) -> Self {
        Failure::Other(e)
    }
}

/// Runs the agent on this thread until it is stopped.
///
/// When the manager refuses the agent's identity the agent stops with that error, unless
/// `enrollment.reenroll_when_refused` is set: then its credentials are deleted and it starts
/// again, enrolling anew (once per start, so a manager that keeps refusing cannot make it loop).
pub fn run(config: Config) -> Result<Exit, AgentError> {
    let mut reenrolled = false;
    loop {
        let executor = LocalExecutor::new();
        match smol::block_on(executor.run(run_on(&executor, config.clone()))) {
            Ok(exit) => return Ok(exit),
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Refused(e)) if config.enrollment.reenroll_when_refused && !reenrolled => {
                log::warn!("{e}; enrollment.reenroll_when_refused is set: enrolling again");
                forget_credentials(&config.agent.state_dir)?;
                reenrolled = true;
            }
            Err(Failure::Refused(e)) => return Err(AgentError(e.to_string())),
        }
    }
}

/// Deletes `client.keys`, so that the next start enrolls.
fn forget_credentials(state_dir: &Path) -> Result<(), AgentError> {
    let keys = state_dir.join(crate::enroll::KEYS_FILE);
    match std::fs::remove_file(&keys) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AgentError(format!(
            "cannot delete the refused credentials {}: {e}",
            keys.display()
        ))),
    }
}

async fn run_on(ex: &LocalExecutor<'_>, config: Config) -> Result<Exit, Failure> {
    let started = Instant::now();
    let state_dir = config.agent.state_dir.clone();
    prepare_state_dir(&state_dir)?;
    let credentials = credentials(&config).await?;
    log::info!(
        "agent {:03} ({}) starting; state in {}",
        credentials.agent_id,
        credentials.name,
        state_dir.display()
    );

    let spool = open_spool(&config, &state_dir.join("spool"))?;
    let shared = SharedSpool::new(spool);
    let (queue_tx, queue_rx) = event_queue(config.buffer.queue_capacity);
    let agent_events = EventSender::new("agent", queue_tx.clone());
    let shutdown = Shutdown::new();
    let link_stop = Shutdown::new();
    let restart = Rc::new(Cell::new(false));
    let restart_ordered = Shutdown::new();

    // Pipeline: queue → spool.
    let pipeline_stats = Rc::new(PipelineStats::default());
    let writer_config = writer::WriterConfig::from_config(&config);
    // The response module's local rules see other modules' events through a lossy tap.
    let (tap, tap_rx) = crate::modules::response::tap_for(&config).unzip();
    let writer_task = ex.spawn(writer::run(
        queue_rx,
        shared.clone(),
        writer_config,
        pipeline_stats.clone(),
        shutdown.clone(),
        tap,
    ));

    // Modules, each under its own memory account.
    let cursor_spool = shared.spool.clone();
    let cursors: CursorLookup =
        Rc::new(move |key: &str| cursor_spool.borrow().cursor(key).map(<[u8]>::to_vec));
    let mut statuses = Vec::new();
    let mut module_tasks = Vec::new();
    // Child processes are reaped by this task, not by async-process's own thread.
    ex.spawn(crate::runtime::child::driver()).detach();
    let (remote_tx, remote_rx) = crate::modules::command::remote_channel();
    let (response_tx, response_rx) = crate::modules::response::request_channel();
    for module in modules::build(&config, remote_rx, response_rx, tap_rx) {
        let name = module.name();
        let Some(account) = account_for(name) else {
            return Err(AgentError(format!(
                "too many modules: no memory account left for {name}"
            ))
            .into());
        };
        let memory = MemoryAccount::new(account, module.budget_bytes());
        let module_dir = state_dir.join("modules").join(name);
        std::fs::create_dir_all(&module_dir)
            .map_err(|e| AgentError(format!("cannot create {}: {e}", module_dir.display())))?;
        let ctx = charged_to(account, || {
            ModuleContext::new(
                EventSender::new(name, queue_tx.clone()),
                memory.clone(),
                module_dir,
                shutdown.clone(),
                cursors.clone(),
            )
        });
        let status = ModuleStatus::new(name, memory);
        statuses.push(status.clone());
        module_tasks.push(ex.spawn(supervisor::supervise(
            module,
            ctx,
            status,
            agent_events.clone(),
        )));
    }
    let module_names: Vec<String> = statuses.iter().map(|s| s.name.to_string()).collect();
    ex.spawn(supervisor::watch_budgets(
        statuses.clone(),
        agent_events.clone(),
        shutdown.clone(),
    ))
    .detach();

    // The link: spool → manager.
    let link_stats = Rc::new(LinkStats::default());
    let link_config = link_config(&config);
    let outbox: Rc<RefCell<dyn Outbox>> = Rc::new(RefCell::new(shared.clone()));
    let on_command = command_handler(
        config.agent.restart_mode,
        restart.clone(),
        restart_ordered.clone(),
        config.manager.remote_commands.then_some(remote_tx),
        response_tx,
    );
    let mut link_task = ex.spawn(link::run(
        link_config,
        credentials.clone(),
        outbox,
        shared.new_records.clone(),
        link_stats.clone(),
        on_command,
        agent_events.clone(),
        link_stop.clone(),
    ));

    // Status socket.
    let snapshot = snapshot::Snapshot {
        started,
        credentials: credentials.clone(),
        modules: statuses,
        link: link_stats.clone(),
        pipeline: pipeline_stats,
        spool: shared.clone(),
        queue: queue_tx.clone(),
        spool_max_bytes: config.buffer.spool_max_bytes,
    };
    let socket = state_dir.join(status::SOCKET_NAME);
    let status_shutdown = shutdown.clone();
    ex.spawn(async move {
        if let Err(e) =
            status::serve(&socket, Rc::new(move || snapshot.report()), status_shutdown).await
        {
            log::warn!("status socket {} unavailable: {e}", socket.display());
        }
    })
    .detach();

    let started_event = AgentEvent::Started {
        version: crate::VERSION.into(),
        name: credentials.name.clone(),
        modules: module_names,
    };
    let _ = agent_events.send(Payload::Agent(started_event)).await;

    // Run until a signal, a restart command, or a fatal link error.
    let signals = wait_for_signal();
    let outcome = async {
        let signal = signals.await;
        Ok(format!("signal {signal}"))
    }
    .or(async {
        restart_ordered.wait().await;
        // A moment for the command's result to reach the manager.
        async_io::Timer::after(Duration::from_millis(200)).await;
        Ok("restart command".to_string())
    })
    .or(async {
        match (&mut link_task).await {
            Ok(()) => Ok("link closed".to_string()),
            Err(e @ link::LinkError::Refused { .. }) => Err(Failure::Refused(e)),
            Err(e) => Err(Failure::Other(AgentError(e.to_string()))),
        }
    })
    .await;

    let reason = match &outcome {
        Ok(reason) => reason.clone(),
        Err(e) => format!("link failure: {e}"),
    };
    log::info!("stopping: {reason}");
    let _ = agent_events.try_send(Payload::Agent(AgentEvent::Stopping { reason }));
    shutdown.request();
    for task in module_tasks {
        task.await;
    }
    writer_task.await;
    // Give the link a moment to deliver what is pending, then close it.
    let deadline = Instant::now() + DRAIN_GRACE;
    while link_stats.state() == link::LinkState::Connected
        && shared.pending() > 0
        && Instant::now() < deadline
    {
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
    link_stop.request();
    if outcome.is_ok() {
        let closed = async {
            let _ = (&mut link_task).await;
        };
        let timeout = async {
            async_io::Timer::after(Duration::from_secs(1)).await;
        };
        closed.or(timeout).await;
    }
    outcome?;
    if restart.get() {
        Ok(Exit::Restart(config.agent.restart_mode))
    } else {
        Ok(Exit::Stopped)
    }
}

fn prepare_state_dir(dir: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| {
        AgentError(format!(
            "cannot create state directory {}: {e}",
            dir.display()
        ))
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        AgentError(format!(
            "cannot restrict state directory {}: {e}",
            dir.display()
        ))
    })
}

/// Loads the stored credentials, enrolling first when there are none (and enrollment is on).
async fn credentials(config: &Config) -> Result<Credentials, AgentError> {
    let dir = &config.agent.state_dir;
    if let Some(found) = Credentials::load(dir).map_err(|e| AgentError(e.to_string()))? {
        return Ok(found);
    }
    if !config.enrollment.enabled {
        return Err(AgentError(format!(
            "not enrolled: no credentials in {} and enrollment is disabled; run `gatewatch enroll`",
            dir.display()
        )));
    }
    crate::enroll::enroll_and_save(config)
        .await
        .map_err(|e| AgentError(e.to_string()))
}

fn open_spool(config: &Config, dir: &Path) -> Result<Spool, AgentError> {
    let spool_config = SpoolConfig {
        max_bytes: config.buffer.spool_max_bytes,
        segment_bytes: config.buffer.spool_segment_bytes,
        when_full: config.buffer.when_full,
    };
    Spool::open(dir, spool_config, Box::new(encode_drop_report))
        .map_err(|e| AgentError(format!("cannot open the spool in {}: {e}", dir.display())))
}

/// The body of the `agent.dropped` record the spool appends after evicting records.
fn encode_drop_report(report: &DropReport) -> Vec<u8> {
    let body = EventBody {
        time_ms: crate::pipeline::queue::now_ms(),
        module: "agent".into(),
        payload: Payload::Agent(AgentEvent::Dropped {
            count: report.count,
            first_seq: report.first_seq,
            last_seq: report.last_seq,
        }),
    };
    let mut out = Vec::new();
    // Encoding a fixed-shape struct into a Vec cannot fail.
    let _ = gatewatch_proto::event::encode_body(&body, &mut out);
    out
}

fn link_config(config: &Config) -> LinkConfig {
    LinkConfig::from_config(&config.manager, &config.buffer)
}

/// Commands from the manager. Restart is always honoured; `Run` only with
/// `manager.remote_commands = true` (then `remote` is the command module's queue);
/// `ActiveResponse` when the response module runs (`responses` is its queue).
fn command_handler(
    mode: RestartMode,
    restart: Rc<Cell<bool>>,
    ordered: Shutdown,
    remote: Option<crate::modules::command::RemoteSender>,
    responses: crate::modules::response::RequestSender,
) -> link::CommandHandler {
    Box::new(move |command: &Command| match command {
        Command::Restart => {
            log::info!("restart ordered by the manager ({mode:?})");
            restart.set(true);
            ordered.request();
            CommandOutcome::Done
        }
        Command::Run {
            name,
            argv,
            timeout_secs,
        } => {
            let Some(remote) = &remote else {
                log::warn!("refused remote command {name}: manager.remote_commands is false");
                return CommandOutcome::Refused {
                    reason: "remote commands are disabled on this agent \
                             (manager.remote_commands = false)"
                        .into(),
                };
            };
            let run = crate::modules::command::RemoteRun {
                name: name.clone(),
                argv: argv.clone(),
                timeout_secs: *timeout_secs,
            };
            match remote.try_send(run) {
                // Accepted: the output follows as `command` events.
                Ok(()) => CommandOutcome::Done,
                Err(async_channel::TrySendError::Full(_)) => CommandOutcome::Failed {
                    error: "too many remote commands waiting; try again later".into(),
                },
                Err(async_channel::TrySendError::Closed(_)) => CommandOutcome::Refused {
                    reason: "the command module is not running on this agent".into(),
                },
            }
        }
        Command::ActiveResponse {
            command,
            arguments,
            alert,
        } => {
            let request = crate::modules::response::ResponseRequest {
                command: command.clone(),
                arguments: arguments.clone(),
                alert: alert.clone(),
            };
            match responses.try_send(request) {
                // Accepted: the action and its result follow as `response` events.
                Ok(()) => CommandOutcome::Done,
                Err(async_channel::TrySendError::Full(_)) => CommandOutcome::Failed {
                    error: "too many active responses waiting; try again later".into(),
                },
                Err(async_channel::TrySendError::Closed(_)) => {
                    log::warn!("refused active response {command}: the module is off");
                    CommandOutcome::Refused {
                        reason: "active response is not running on this agent \
                                 (modules.response.enabled = false)"
                            .into(),
                    }
                }
            }
        }
    })
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn wait_for_signal() -> &'static str {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let Ok(mut signals) = Signals::new([Signal::Term, Signal::Int]) else {
        log::warn!("cannot install signal handlers; stop the agent with SIGKILL");
        return futures_lite::future::pending().await;
    };
    match signals.next().await {
        Some(Ok(Signal::Int)) => "SIGINT",
        _ => "SIGTERM",
    }
}
