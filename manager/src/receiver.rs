//! The event receiver on port 1514: one session per agent connection (see `proto::session`).
//!
//! Hello → Challenge → Auth → Welcome, then events, keep-alives and command results from the
//! agent, commands from the manager. An event batch is acked only after its commit; the frames
//! that arrive during a commit are decoded meanwhile and committed next, as one group (see
//! `commits`). Anything out of order or undecodable ends that connection (with the reason
//! logged), never the process.

mod commits;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use gatewatch_proto::frame::{self, FrameError};
use gatewatch_proto::session::proof_matches;
use gatewatch_proto::{format_agent_id, AgentMessage, ManagerMessage, Refusal, PROTOCOL_VERSION};
use rand_core::{OsRng, RngCore};

use crate::conn::{timeout, ConnError, FramedConn};
use crate::model::now_ms;
use crate::server::Context;
use crate::ManagerError;
use commits::Commits;

/// Why a session ended other than by the agent's choice.
#[derive(Debug)]
enum SessionError {
    /// The connection failed or timed out.
    Conn(ConnError),
    /// The agent broke the protocol; it is told so, then the connection is closed.
    Violation(String),
    /// The session is refused for a reason the agent should report.
    Refused(Refusal, String),
    /// The store failed; the batch was not acked, so the agent will resend it.
    Store(ManagerError),
}

impl From<ConnError> for SessionError {
    fn from(e: ConnError) -> Self {
        SessionError::Conn(e)
    }
}

impl From<ManagerError> for SessionError {
    fn from(e: ManagerError) -> Self {
        SessionError::Store(e)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Conn(e) => write!(f, "{e}"),
            SessionError::Violation(why) => write!(f, "protocol violation: {why}"),
            SessionError::Refused(reason, detail) => write!(f, "refused ({reason:?}): {detail}"),
            SessionError::Store(e) => write!(f, "{e}"),
        }
    }
}

fn decode<'a>(body: &'a [u8], expecting: &str) -> Result<AgentMessage<'a>, SessionError> {
    frame::decode_body(body)
        .map_err(|e: FrameError| SessionError::Violation(format!("{expecting}: {e}")))
}

/// Serves one connection to the event port, from TLS handshake to close.
pub(crate) async fn serve_connection(
    ctx: Arc<Context>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let tls = match timeout(ctx.io_timeout, acceptor.accept(tcp)).await {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => return log::info!("events: {peer}: TLS handshake failed: {e}"),
        None => return log::info!("events: {peer}: TLS handshake timed out"),
    };
    let mut conn = FramedConn::new(tls, ctx.io_timeout);
    match run_session(&ctx, &mut conn, peer).await {
        Ok(()) => {}
        Err(SessionError::Refused(reason, detail)) => {
            log::warn!("events: {peer}: refused ({reason:?}): {detail}");
            let _ = conn.send(&ManagerMessage::Refused { reason, detail }).await;
        }
        Err(SessionError::Violation(why)) => {
            log::warn!("events: {peer}: protocol violation: {why}; closing");
            let _ = conn
                .send(&ManagerMessage::Refused {
                    reason: Refusal::ProtocolViolation,
                    detail: why,
                })
                .await;
        }
        Err(e) => log::warn!("events: {peer}: {e}; closing"),
    }
    conn.close().await;
}

async fn run_session<S>(
    ctx: &Arc<Context>,
    conn: &mut FramedConn<S>,
    peer: SocketAddr,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (agent_id, name) = authenticate(ctx, conn).await?;
    let (token, commands) = ctx.sessions.register(agent_id);
    let result = serve_agent(ctx, conn, agent_id, &name, peer, commands).await;
    if ctx.sessions.unregister(agent_id, token) {
        let sessions = ctx.sessions.clone();
        // Checked again on the store thread: a new session may have started since.
        let closed = ctx
            .store
            .call(move |db| {
                if sessions.is_connected(agent_id) {
                    Ok(())
                } else {
                    db.session_closed(agent_id, now_ms())
                }
            })
            .await;
        if let Err(e) = closed {
            log::warn!("agent {}: {e}", format_agent_id(agent_id));
        }
    }
    log::info!(
        "agent {} ({name}) from {peer}: session ended",
        format_agent_id(agent_id)
    );
    result
}

/// Hello, Challenge, Auth: returns the agent's id and name once its proof matches.
async fn authenticate<S>(
    ctx: &Context,
    conn: &mut FramedConn<S>,
) -> Result<(u32, String), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(body) = conn.read_frame_within(ctx.io_timeout).await? else {
        return Err(SessionError::Violation("closed before Hello".into()));
    };
    let (version, agent_id) = match decode(&body, "expected Hello")? {
        AgentMessage::Hello { version, agent_id } => (version, agent_id),
        other => {
            return Err(SessionError::Violation(format!(
                "expected Hello, got {}",
                name_of(&other)
            )))
        }
    };
    if version > PROTOCOL_VERSION {
        let detail =
            format!("agent speaks protocol {version}, this manager at most {PROTOCOL_VERSION}");
        return Err(SessionError::Refused(Refusal::UnsupportedVersion, detail));
    }
    let (found, revoked) = ctx
        .store
        .call(move |db| Ok((db.agent_credentials(agent_id)?, db.revocation(agent_id)?)))
        .await?;
    let Some((name, key)) = found else {
        return Err(match revoked {
            Some((name, when_ms)) => revoked_refusal(agent_id, &name, when_ms),
            None => SessionError::Refused(
                Refusal::UnknownAgent,
                format!("no agent {} is registered", format_agent_id(agent_id)),
            ),
        });
    };
    let mut nonce = [0u8; 32];
    OsRng.fill_bytes(&mut nonce);
    conn.send(&ManagerMessage::Challenge {
        version: PROTOCOL_VERSION,
        nonce,
    })
    .await?;
    let Some(body) = conn.read_frame_within(ctx.io_timeout).await? else {
        return Err(SessionError::Violation("closed before Auth".into()));
    };
    let proof = match decode(&body, "expected Auth")? {
        AgentMessage::Auth { proof } => proof,
        other => {
            return Err(SessionError::Violation(format!(
                "expected Auth, got {}",
                name_of(&other)
            )))
        }
    };
    if !proof_matches(key.as_bytes(), &nonce, agent_id, &proof) {
        let detail = format!(
            "the proof of agent {} does not match its key",
            format_agent_id(agent_id)
        );
        return Err(SessionError::Refused(Refusal::BadProof, detail));
    }
    Ok((agent_id, name))
}

enum Step {
    Frame(Result<Option<Vec<u8>>, ConnError>),
    Command(Result<ManagerMessage, async_channel::RecvError>),
    Committed(Result<u64, SessionError>),
}

/// The open session: Welcome, then frames from the agent and commands for it until one side ends.
async fn serve_agent<S>(
    ctx: &Context,
    conn: &mut FramedConn<S>,
    agent_id: u32,
    name: &str,
    peer: SocketAddr,
    commands: async_channel::Receiver<ManagerMessage>,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ip = peer.ip().to_string();
    let opened = ctx
        .store
        .call(move |db| db.session_opened(agent_id, &ip, now_ms()))
        .await?;
    let Some(ack_up_to) = opened else {
        // Deleted between the challenge and now: the deletion could not see this session yet.
        let detail = format!("agent {} was deleted", format_agent_id(agent_id));
        return Err(SessionError::Refused(Refusal::Revoked, detail));
    };
    conn.send(&ManagerMessage::Welcome {
        version: PROTOCOL_VERSION,
        ack_up_to,
    })
    .await?;
    log::info!(
        "agent {} ({name}) connected from {peer}; stored up to seq {ack_up_to}",
        format_agent_id(agent_id)
    );
    let mut commits = Commits::new(agent_id, name);
    loop {
        // The store thread takes the events decoded meanwhile as soon as it is free.
        commits.start(&ctx.store).await?;
        let step = {
            // Every branch is cancel-safe: a read keeps what it received, a recv takes nothing,
            // and a commit not yet answered is awaited again on the next turn.
            let reading = commits.accepts_frames();
            let running = commits.is_running();
            let frame = async {
                if reading {
                    Step::Frame(conn.read_frame().await)
                } else {
                    std::future::pending().await
                }
            };
            let command = async { Step::Command(commands.recv().await) };
            let committed = async { Step::Committed(commits.committed().await) };
            let next =
                futures_lite::future::or(frame, futures_lite::future::or(command, committed));
            // A running commit is not silence from the agent: its answer ends the wait.
            match timeout(ctx.idle_timeout, next).await {
                Some(step) => step,
                None if running => continue,
                None => return Err(SessionError::Conn(ConnError::Timeout(ctx.idle_timeout))),
            }
        };
        match step {
            Step::Committed(up_to) => conn.send(&ManagerMessage::Ack { up_to: up_to? }).await?,
            Step::Command(Ok(refusal @ ManagerMessage::Refused { .. })) => {
                // The agent was deleted: tell it why, then close.
                log::info!(
                    "agent {} ({name}) from {peer}: credentials revoked, closing its session",
                    format_agent_id(agent_id)
                );
                conn.send(&refusal).await?;
                return Ok(());
            }
            Step::Command(Ok(command)) => conn.send(&command).await?,
            Step::Command(Err(_)) => {
                log::info!(
                    "agent {} ({name}) from {peer}: replaced by a newer session",
                    format_agent_id(agent_id)
                );
                return Ok(());
            }
            Step::Frame(Ok(None)) => {
                // Whatever arrived before the end is stored (and acked, should the agent still
                // read); a connection error instead drops it unacked: the agent sends it again.
                flush(ctx, conn, &mut commits).await?;
                return Ok(());
            }
            Step::Frame(Err(e)) => return Err(e.into()),
            Step::Frame(Ok(Some(body))) => {
                let msg = decode(&body, "undecodable message")?;
                if let AgentMessage::Events { first_seq, records } = msg {
                    if !commits.add(first_seq, &records)? && commits.is_idle() {
                        // Nothing to store and nothing pending: ack what is already held.
                        let up_to = ctx.store.call(move |db| db.watermark(agent_id)).await?;
                        conn.send(&ManagerMessage::Ack { up_to }).await?;
                    }
                    continue;
                }
                // Any other message is answered after the events before it are acked.
                flush(ctx, conn, &mut commits).await?;
                if handle_frame(ctx, conn, agent_id, name, msg).await? == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }
}

/// Commits everything received so far and sends its acks.
async fn flush<S>(
    ctx: &Context,
    conn: &mut FramedConn<S>,
    commits: &mut Commits,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while !commits.is_idle() {
        commits.start(&ctx.store).await?;
        let up_to = commits.committed().await?;
        conn.send(&ManagerMessage::Ack { up_to }).await?;
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Answers a message other than `Events`.
async fn handle_frame<S>(
    ctx: &Context,
    conn: &mut FramedConn<S>,
    agent_id: u32,
    name: &str,
    msg: AgentMessage<'_>,
) -> Result<Flow, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = format_agent_id(agent_id);
    match msg {
        AgentMessage::Keepalive { status } => {
            let version = status.version;
            ctx.store
                .call(move |db| db.keepalive(agent_id, &version, now_ms()))
                .await?;
            conn.send(&ManagerMessage::KeepaliveAck).await?;
        }
        AgentMessage::CommandResult {
            id: command_id,
            outcome,
        } => {
            log::info!("agent {id} ({name}): command {command_id}: {outcome:?}");
            let json = serde_json::to_string(&outcome)
                .map_err(|e| ManagerError::store("cannot encode an outcome", e))?;
            ctx.store
                .call(move |db| db.command_result(command_id, agent_id, &json, now_ms()))
                .await?;
        }
        AgentMessage::Goodbye => {
            log::info!("agent {id} ({name}) said goodbye");
            return Ok(Flow::Stop);
        }
        other @ (AgentMessage::Hello { .. }
        | AgentMessage::Auth { .. }
        | AgentMessage::Events { .. }) => {
            return Err(SessionError::Violation(format!(
                "{} after the session opened",
                name_of(&other)
            )));
        }
    }
    Ok(Flow::Continue)
}

/// The refusal of a deleted agent, saying when it was deleted.
fn revoked_refusal(agent_id: u32, name: &str, when_ms: u64) -> SessionError {
    let detail = format!(
        "agent {} ({name}) was deleted from the manager at {}",
        format_agent_id(agent_id),
        crate::model::format_time_ms(when_ms)
    );
    SessionError::Refused(Refusal::Revoked, detail)
}

fn name_of(msg: &AgentMessage<'_>) -> &'static str {
    match msg {
        AgentMessage::Hello { .. } => "Hello",
        AgentMessage::Auth { .. } => "Auth",
        AgentMessage::Events { .. } => "Events",
        AgentMessage::Keepalive { .. } => "Keepalive",
        AgentMessage::CommandResult { .. } => "CommandResult",
        AgentMessage::Goodbye => "Goodbye",
    }
}
