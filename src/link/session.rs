//! One session with one manager: handshake, then a reader, a writer and a watchdog running
//! concurrently on the one executor until something ends the session.
//!
//! The reader and the writer are never cancelled while the session goes on (embedded-tls keeps a
//! half-read record on the read future's stack); they are dropped together when the session
//! ends. They talk through [`Shared`]: the reader records acks and queues command results, the
//! writer sends them, and an `event_listener::Event` wakes the writer.

use super::batch::{self, Cut, InFlight};
use super::gather::Gather;
use super::{LinkConfig, LinkState, LinkStats};
use crate::enroll::Credentials;
use crate::pipeline::ratelimit::{FloodMonitor, RateLimiter};
use crate::pipeline::{EventSender, OutRecord, Outbox};
use crate::runtime::shutdown::Shutdown;
use crate::tls::{
    self, write_frame, FrameReader, SessionReader, SessionWriter, TlsBuffers, TlsClientConfig,
    TlsFailure, TlsSession,
};
use async_io::Timer;
use futures_lite::FutureExt;
use gatewatch_proto::session::auth_proof;
use gatewatch_proto::{
    frame, AgentMessage, KeepaliveStatus, ManagerMessage, Payload, Refusal, PROTOCOL_VERSION,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

/// Oldest manager protocol version this agent can talk to.
const MIN_MANAGER_VERSION: u16 = 1;
/// How long a Goodbye (and then close_notify) may take at shutdown.
const GOODBYE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Everything a session borrows from [`super::run`].
pub(super) struct SessionContext<'a> {
    pub cfg: &'a LinkConfig,
    pub creds: &'a Credentials,
    pub tls_cfg: &'a TlsClientConfig,
    pub outbox: &'a Rc<RefCell<dyn Outbox>>,
    pub new_records: &'a event_listener::Event,
    pub stats: &'a LinkStats,
    pub agent_events: &'a EventSender,
    pub shutdown: &'a Shutdown,
    /// When the link started, for the keep-alive's uptime.
    pub started: Instant,
}

/// How a session ended.
pub(super) enum SessionEnd {
    /// The agent is stopping (Goodbye sent when a session was open).
    Shutdown,
    /// The manager refused the session.
    Refused {
        manager: String,
        reason: Refusal,
        detail: String,
    },
    /// Anything else; `welcomed` tells whether the session had opened.
    Failed { welcomed: bool, error: String },
}

fn failed(welcomed: bool, error: impl Into<String>) -> SessionEnd {
    SessionEnd::Failed {
        welcomed,
        error: error.into(),
    }
}

/// Connects to `manager`, opens the session and serves it until it ends.
pub(super) async fn serve(
    ctx: &SessionContext<'_>,
    manager: &str,
    buffers: &mut TlsBuffers,
    on_command: &mut super::CommandHandler,
    limiter: &mut RateLimiter,
    flood: &mut FloodMonitor,
) -> SessionEnd {
    let mut session = match unless_shutdown(
        ctx.shutdown,
        tls::connect(manager, ctx.cfg.port, ctx.tls_cfg, buffers),
    )
    .await
    {
        None => return SessionEnd::Shutdown,
        Some(Err(e)) => return failed(false, e.to_string()),
        Some(Ok(session)) => session,
    };
    let mut frames = FrameReader::new(ctx.cfg.max_frame);
    let silence = ctx.cfg.reconnect;
    let timeout = async {
        Timer::after(silence).await;
        Err(failed(
            false,
            format!("no Welcome within {} s", silence.as_secs()),
        ))
    };
    let end = match unless_shutdown(
        ctx.shutdown,
        handshake(ctx, &mut session, &mut frames).or(timeout),
    )
    .await
    {
        None => SessionEnd::Shutdown,
        Some(Err(end)) => end,
        Some(Ok(ack_up_to)) => {
            let resume_after = welcome(ctx, session.peer(), ack_up_to);
            exchange(
                ctx,
                &mut session,
                &mut frames,
                resume_after,
                on_command,
                limiter,
                flood,
            )
            .await
        }
    };
    session.close().or(sleep(GOODBYE_GRACE)).await;
    end
}

async fn sleep(duration: std::time::Duration) {
    Timer::after(duration).await;
}

/// Runs `fut` unless the agent is asked to stop first.
async fn unless_shutdown<T>(shutdown: &Shutdown, fut: impl Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            shutdown.wait().await;
            None
        })
        .await
}

/// Hello → Challenge → Auth → Welcome; returns the manager's `ack_up_to`.
async fn handshake(
    ctx: &SessionContext<'_>,
    session: &mut TlsSession<'_>,
    frames: &mut FrameReader,
) -> Result<u64, SessionEnd> {
    let peer = session.peer().to_string();
    let max = ctx.cfg.max_frame;
    let agent_id = ctx.creds.agent_id;
    let io = |e: TlsFailure| failed(false, e.to_string());
    session
        .send(
            &AgentMessage::Hello {
                version: PROTOCOL_VERSION,
                agent_id,
            },
            max,
        )
        .await
        .map_err(io)?;
    let nonce = match recv_manager(session, frames).await? {
        ManagerMessage::Challenge { version, nonce } if version >= MIN_MANAGER_VERSION => nonce,
        ManagerMessage::Refused { reason, detail } => {
            return Err(SessionEnd::Refused {
                manager: peer,
                reason,
                detail,
            })
        }
        other => {
            return Err(failed(
                false,
                format!("manager {peer} answered Hello with {}", describe(&other)),
            ))
        }
    };
    let proof = auth_proof(ctx.creds.key.as_bytes(), &nonce, agent_id);
    session
        .send(&AgentMessage::Auth { proof }, max)
        .await
        .map_err(io)?;
    match recv_manager(session, frames).await? {
        ManagerMessage::Welcome { ack_up_to, .. } => Ok(ack_up_to),
        ManagerMessage::Refused { reason, detail } => Err(SessionEnd::Refused {
            manager: peer,
            reason,
            detail,
        }),
        other => Err(failed(
            false,
            format!("manager {peer} answered Auth with {}", describe(&other)),
        )),
    }
}

async fn recv_manager(
    session: &mut TlsSession<'_>,
    frames: &mut FrameReader,
) -> Result<ManagerMessage, SessionEnd> {
    let body = session
        .recv(frames)
        .await
        .map_err(|e| failed(false, e.to_string()))?;
    frame::decode_body(&body).map_err(|e| {
        failed(
            false,
            format!("garbage from manager {}: {e}", session.peer()),
        )
    })
}

/// A short name of a manager message for error messages (never its content).
fn describe(msg: &ManagerMessage) -> &'static str {
    match msg {
        ManagerMessage::Challenge { .. } => "Challenge",
        ManagerMessage::Welcome { .. } => "Welcome",
        ManagerMessage::Refused { .. } => "Refused",
        ManagerMessage::Ack { .. } => "Ack",
        ManagerMessage::KeepaliveAck => "KeepaliveAck",
        ManagerMessage::Command { .. } => "Command",
    }
}

/// Applies the Welcome: trims what the manager already holds and returns where sending resumes.
fn welcome(ctx: &SessionContext<'_>, peer: &str, ack_up_to: u64) -> u64 {
    let mut outbox = ctx.outbox.borrow_mut();
    let (acked, last_seq) = (outbox.acked(), outbox.last_seq());
    if ack_up_to > last_seq {
        log::warn!(
            "manager {peer} holds events up to {ack_up_to} but the spool has assigned only up to {last_seq} \
             (was the agent's state directory reset?)"
        );
    }
    let up_to = ack_up_to.min(last_seq);
    if up_to > acked {
        if let Err(e) = outbox.ack(up_to) {
            log::error!("the spool could not trim records up to {up_to}: {e}");
        }
    }
    let stats = ctx.stats;
    stats.set_state(LinkState::Connected);
    *stats.manager.borrow_mut() = Some(peer.to_string());
    stats.connects.set(stats.connects.get() + 1);
    stats.acked.set(stats.acked.get().max(up_to));
    log::info!("connected to manager {peer}; it holds events up to {ack_up_to}");
    acked.max(ack_up_to)
}

/// State shared by the reader, the writer and the watchdog of one session.
struct Shared {
    last_received: Cell<Instant>,
    last_sent: Cell<u64>,
    in_flight: RefCell<InFlight>,
    control: RefCell<VecDeque<AgentMessage<'static>>>,
    wake_writer: event_listener::Event,
}

async fn exchange(
    ctx: &SessionContext<'_>,
    session: &mut TlsSession<'_>,
    frames: &mut FrameReader,
    resume_after: u64,
    on_command: &mut super::CommandHandler,
    limiter: &mut RateLimiter,
    flood: &mut FloodMonitor,
) -> SessionEnd {
    let peer = session.peer().to_string();
    let shared = Shared {
        last_received: Cell::new(Instant::now()),
        last_sent: Cell::new(resume_after),
        in_flight: RefCell::new(InFlight::default()),
        control: RefCell::new(VecDeque::new()),
        wake_writer: event_listener::Event::new(),
    };
    let (mut reader, mut writer) = session.split();
    let writing = write_loop(ctx, &peer, &mut writer, &shared, limiter, flood);
    let reading = read_loop(ctx, &peer, &mut reader, frames, &shared, on_command);
    let guard = async {
        // Bounds the Goodbye when the writer is stuck in a write the manager does not read.
        ctx.shutdown.wait().await;
        Timer::after(GOODBYE_GRACE).await;
        SessionEnd::Shutdown
    };
    writing
        .or(reading)
        .or(watchdog(ctx, &peer, &shared))
        .or(guard)
        .await
}

async fn read_loop(
    ctx: &SessionContext<'_>,
    peer: &str,
    reader: &mut SessionReader<'_>,
    frames: &mut FrameReader,
    shared: &Shared,
    on_command: &mut super::CommandHandler,
) -> SessionEnd {
    loop {
        let body = match frames.next(reader, peer).await {
            Ok(body) => body,
            Err(_) if ctx.shutdown.is_requested() => return SessionEnd::Shutdown,
            Err(e) => return failed(true, e.to_string()),
        };
        shared.last_received.set(Instant::now());
        let msg = match frame::decode_body::<ManagerMessage>(&body) {
            Ok(msg) => msg,
            Err(e) => return failed(true, format!("garbage from manager {peer}: {e}")),
        };
        match msg {
            ManagerMessage::Ack { up_to } => on_ack(ctx, peer, shared, up_to),
            ManagerMessage::KeepaliveAck => {}
            ManagerMessage::Command { id, command } => {
                log::info!("manager {peer} sent command {id}: {command:?}");
                let outcome = on_command(&command);
                shared
                    .control
                    .borrow_mut()
                    .push_back(AgentMessage::CommandResult { id, outcome });
                shared.wake_writer.notify(usize::MAX);
            }
            ManagerMessage::Refused { reason, detail } => {
                return SessionEnd::Refused {
                    manager: peer.to_string(),
                    reason,
                    detail,
                }
            }
            other => {
                return failed(
                    true,
                    format!(
                        "manager {peer} sent {} in an open session",
                        describe(&other)
                    ),
                )
            }
        }
    }
}

fn on_ack(ctx: &SessionContext<'_>, peer: &str, shared: &Shared, up_to: u64) {
    let last_sent = shared.last_sent.get();
    if up_to > last_sent {
        log::warn!(
            "manager {peer} acknowledged up to {up_to}, beyond the last record sent ({last_sent})"
        );
    }
    let up_to = up_to.min(last_sent);
    {
        let mut outbox = ctx.outbox.borrow_mut();
        if up_to > outbox.acked() {
            if let Err(e) = outbox.ack(up_to) {
                // The records stay spooled and are sent again later: nothing is lost.
                log::error!("the spool could not trim records up to {up_to}: {e}");
            }
        }
    }
    ctx.stats.acked.set(ctx.stats.acked.get().max(up_to));
    shared.in_flight.borrow_mut().release(up_to);
    shared.wake_writer.notify(usize::MAX);
}

/// What the writer could do with the outbox.
enum Step {
    Sent,
    NothingNew,
    /// Few records wait soon after a small frame: wait for more, or until this time.
    Gathering(Instant),
    WindowFull,
    Limited(Instant),
}

async fn write_loop(
    ctx: &SessionContext<'_>,
    peer: &str,
    writer: &mut SessionWriter<'_>,
    shared: &Shared,
    limiter: &mut RateLimiter,
    flood: &mut FloodMonitor,
) -> SessionEnd {
    let max = ctx.cfg.max_frame;
    let mut next_keepalive = Instant::now();
    let mut records = Vec::new();
    let mut gather = Gather::default();
    // One timer re-armed only when its deadline changes: a new timer per wait would wake
    // async-io's reactor thread for every record sent.
    let mut wait_timer = Timer::never();
    let mut wait_until: Option<Instant> = None;
    loop {
        // Control traffic first and outside the rate limit: command results never wait for events.
        loop {
            let Some(msg) = shared.control.borrow_mut().pop_front() else {
                break;
            };
            if let Err(e) = write_frame(writer, &msg, max, peer).await {
                return failed(true, e.to_string());
            }
        }
        if ctx.shutdown.is_requested() {
            let bye = async {
                write_frame(writer, &AgentMessage::Goodbye, max, peer)
                    .await
                    .map(|_| ())
            };
            let _ = bye
                .or(async {
                    Timer::after(GOODBYE_GRACE).await;
                    Ok(())
                })
                .await;
            return SessionEnd::Shutdown;
        }
        if Instant::now() >= next_keepalive {
            if let Err(e) = write_frame(writer, &keepalive(ctx), max, peer).await {
                return failed(true, e.to_string());
            }
            ctx.stats.keepalives.set(ctx.stats.keepalives.get() + 1);
            next_keepalive = Instant::now() + ctx.cfg.keepalive;
        }
        // Listen before looking, so a notification between the look and the wait is not lost.
        let new_records = ctx.new_records.listen();
        let woken = shared.wake_writer.listen();
        if !shared.control.borrow().is_empty() {
            continue;
        }
        let step = match send_batch(
            ctx,
            peer,
            writer,
            shared,
            limiter,
            &mut gather,
            &mut records,
        )
        .await
        {
            Ok(step) => step,
            Err(end) => return end,
        };
        report_flood(ctx, shared, limiter, flood);
        let (until, watch_new) = match step {
            Step::Sent => {
                futures_lite::future::yield_now().await;
                continue;
            }
            Step::NothingNew => (next_keepalive, true),
            Step::Gathering(at) => (at.min(next_keepalive), true),
            Step::WindowFull => (next_keepalive, false),
            Step::Limited(at) => (at.min(next_keepalive), false),
        };
        let new = async {
            if watch_new {
                new_records.await
            } else {
                std::future::pending().await
            }
        };
        if wait_until != Some(until) || !wait_timer.will_fire() {
            wait_timer.set_at(until);
            wait_until = Some(until);
        }
        let timer = async {
            (&mut wait_timer).await;
        };
        timer.or(new).or(woken).or(ctx.shutdown.wait()).await;
    }
}

/// Sends the next batch if the outbox, the ack window and the rate limiter allow.
async fn send_batch(
    ctx: &SessionContext<'_>,
    peer: &str,
    writer: &mut SessionWriter<'_>,
    shared: &Shared,
    limiter: &mut RateLimiter,
    gather: &mut Gather,
    records: &mut Vec<OutRecord>,
) -> Result<Step, SessionEnd> {
    let after = shared.last_sent.get();
    let waiting = ctx.outbox.borrow().last_seq().saturating_sub(after);
    if waiting == 0 {
        return Ok(Step::NothingNew);
    }
    if shared.in_flight.borrow().bytes() >= ctx.cfg.max_unacked_bytes {
        return Ok(Step::WindowFull);
    }
    let now = Instant::now();
    if let Some(until) = gather.hold_until(waiting, now) {
        return Ok(Step::Gathering(until));
    }
    let allowance = limiter.available(now);
    if allowance == 0 {
        return Ok(Step::Limited(now + limiter.wait_time(now)));
    }
    records.clear();
    let max_records = ctx.cfg.max_batch_records.clamp(1, allowance);
    if let Err(e) =
        ctx.outbox
            .borrow_mut()
            .read_after(after, max_records, ctx.cfg.max_frame, records)
    {
        return Err(failed(true, format!("reading the spool failed: {e}")));
    }
    let n = match batch::cut(records, ctx.cfg.max_frame) {
        Cut::Send(0) => return Ok(Step::NothingNew),
        Cut::Send(n) => n,
        Cut::Oversized => {
            let r = &records[0];
            log::error!(
                "record {} ({} bytes) can never fit in a {}-byte frame; skipping it",
                r.seq,
                r.body.len(),
                ctx.cfg.max_frame
            );
            shared.last_sent.set(r.seq);
            return Ok(Step::Sent);
        }
    };
    let batch = &records[..n];
    let msg = AgentMessage::Events {
        first_seq: batch[0].seq,
        records: batch.iter().map(|r| r.body.as_slice()).collect(),
    };
    let bytes = write_frame(writer, &msg, ctx.cfg.max_frame, peer)
        .await
        .map_err(|e| failed(true, e.to_string()))?;
    limiter.grant(n, now);
    gather.sent(bytes, ctx.cfg.max_frame, now);
    let last = batch[n - 1].seq;
    shared.in_flight.borrow_mut().push(last, bytes);
    shared.last_sent.set(last);
    ctx.stats.sent.set(ctx.stats.sent.get() + n as u64);
    Ok(Step::Sent)
}

/// Feeds the flood monitor and queues its report, if any.
fn report_flood(
    ctx: &SessionContext<'_>,
    shared: &Shared,
    limiter: &RateLimiter,
    flood: &mut FloodMonitor,
) {
    let now = Instant::now();
    let (backlog, waiting) = {
        let outbox = ctx.outbox.borrow();
        (outbox.pending(), outbox.last_seq() > shared.last_sent.get())
    };
    let limited = waiting && limiter.available(now) == 0;
    if let Some(event) = flood.observe(backlog, limited, now) {
        log::warn!("{}: backlog {backlog}", event.kind());
        if ctx.agent_events.try_send(Payload::Agent(event)).is_err() {
            log::warn!("the event queue is full: the flood report was not queued");
        }
    }
}

fn keepalive(ctx: &SessionContext<'_>) -> AgentMessage<'static> {
    let outbox = ctx.outbox.borrow();
    AgentMessage::Keepalive {
        status: KeepaliveStatus {
            version: crate::VERSION.to_string(),
            uptime_secs: ctx.started.elapsed().as_secs(),
            spooled: outbox.pending(),
            dropped_total: outbox.dropped_total(),
        },
    }
}

/// Ends the session when nothing at all came from the manager for `reconnect`.
async fn watchdog(ctx: &SessionContext<'_>, peer: &str, shared: &Shared) -> SessionEnd {
    loop {
        let deadline = shared.last_received.get() + ctx.cfg.reconnect;
        if Instant::now() >= deadline {
            return failed(
                true,
                format!(
                    "manager {peer} sent nothing for {} ms; reconnecting",
                    ctx.cfg.reconnect.as_millis()
                ),
            );
        }
        Timer::at(deadline).await;
    }
}
