//! The event receiver on port 1514: one session per agent connection (see `proto::session`).
//!
//! Hello → Challenge → Auth → Welcome, then events, keep-alives and command results from the
//! agent, commands from the manager. An event batch is acked only after its commit. Anything out
//! of order or undecodable ends that connection (with the reason logged), never the process.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use gatewatch_proto::event;
use gatewatch_proto::frame::{self, FrameError};
use gatewatch_proto::session::proof_matches;
use gatewatch_proto::{format_agent_id, AgentMessage, ManagerMessage, Refusal, PROTOCOL_VERSION};
use rand_core::{OsRng, RngCore};

use crate::conn::{timeout, ConnError, FramedConn};
use crate::model::now_ms;
use crate::server::Context;
use crate::store::NewEvent;
use crate::ManagerError;

/// Why a session ended other than by the agent's choice.
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
    loop {
        // Both branches are cancel-safe: a read keeps what it received, a recv takes nothing.
        let next =
            futures_lite::future::or(async { Step::Frame(conn.read_frame().await) }, async {
                Step::Command(commands.recv().await)
            });
        let Some(step) = timeout(ctx.idle_timeout, next).await else {
            return Err(SessionError::Conn(ConnError::Timeout(ctx.idle_timeout)));
        };
        match step {
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
            Step::Frame(Ok(None)) => return Ok(()),
            Step::Frame(Err(e)) => return Err(e.into()),
            Step::Frame(Ok(Some(body))) if is_events(&body) => {
                // Group commit: the frames already received are stored in one transaction (one
                // fsync) and acknowledged with one ack.
                let (bodies, after) = gather_events(conn, body).await;
                let up_to = store_frames(ctx, agent_id, name, &bodies).await?;
                conn.send(&ManagerMessage::Ack { up_to }).await?;
                match after {
                    None => {}
                    Some(Ok(Some(body))) => {
                        let flow = handle_frame(ctx, conn, agent_id, name, &body).await?;
                        if flow == Flow::Stop {
                            return Ok(());
                        }
                    }
                    Some(Ok(None)) => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                }
            }
            Step::Frame(Ok(Some(body))) => {
                if handle_frame(ctx, conn, agent_id, name, &body).await? == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

async fn handle_frame<S>(
    ctx: &Context,
    conn: &mut FramedConn<S>,
    agent_id: u32,
    name: &str,
    body: &[u8],
) -> Result<Flow, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = format_agent_id(agent_id);
    match decode(body, "undecodable message")? {
        AgentMessage::Events { .. } => {
            let up_to = store_frames(ctx, agent_id, name, &[body.to_vec()]).await?;
            conn.send(&ManagerMessage::Ack { up_to }).await?;
        }
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
        other @ (AgentMessage::Hello { .. } | AgentMessage::Auth { .. }) => {
            return Err(SessionError::Violation(format!(
                "{} after the session opened",
                name_of(&other)
            )));
        }
    }
    Ok(Flow::Continue)
}

/// Most `Events` frames stored in one transaction.
const GROUP_FRAMES: usize = 16;

fn is_events(body: &[u8]) -> bool {
    matches!(
        frame::decode_body::<AgentMessage>(body),
        Ok(AgentMessage::Events { .. })
    )
}

/// `first` and the `Events` frames that follow it already received (none is waited for), up to
/// [`GROUP_FRAMES`]; and what ended the run when it was not the lack of data: another message,
/// the end of the stream, or an error, each to be handled after the events are stored.
async fn gather_events<S>(
    conn: &mut FramedConn<S>,
    first: Vec<u8>,
) -> (Vec<Vec<u8>>, Option<Result<Option<Vec<u8>>, ConnError>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bodies = vec![first];
    while bodies.len() < GROUP_FRAMES {
        // `read_frame` is cancel-safe: a read that is not ready leaves the stream as it was.
        match futures_lite::future::poll_once(conn.read_frame()).await {
            None => break,
            Some(Ok(Some(body))) if is_events(&body) => bodies.push(body),
            Some(other) => return (bodies, Some(other)),
        }
    }
    (bodies, None)
}

/// Decodes and stores the records of `Events` frames in one transaction; returns the sequence
/// number to ack (the last record of the last frame).
async fn store_frames(
    ctx: &Context,
    agent_id: u32,
    name: &str,
    bodies: &[Vec<u8>],
) -> Result<u64, SessionError> {
    let received = now_ms();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut up_to = None;
    for body in bodies {
        let AgentMessage::Events { first_seq, records } = decode(body, "undecodable message")?
        else {
            return Err(SessionError::Violation("expected Events".into()));
        };
        let Some(count) = u64::try_from(records.len()).ok().filter(|&n| n > 0) else {
            continue;
        };
        let last = first_seq
            .checked_add(count - 1)
            .filter(|&last| i64::try_from(last).is_ok())
            .ok_or_else(|| {
                SessionError::Violation(format!("sequence numbers from {first_seq} overflow"))
            })?;
        let before = events.len();
        events.extend(
            records
                .iter()
                .zip(first_seq..)
                .map(|(r, seq)| decode_record(seq, r, received)),
        );
        let malformed = events[before..]
            .iter()
            .filter(|e| e.kind == "malformed")
            .count();
        if malformed > 0 {
            log::warn!(
                "agent {} ({name}): {malformed} malformed records in {first_seq}..={last}",
                format_agent_id(agent_id)
            );
        }
        up_to = Some(last);
    }
    let Some(last) = up_to else {
        // Nothing to store: ack what is already held.
        return Ok(ctx.store.call(move |db| db.watermark(agent_id)).await?);
    };
    let count = events.len();
    let name = name.to_string();
    let fresh = ctx
        .store
        .call(move |db| db.store_events(agent_id, &name, events, received))
        .await?;
    log::debug!(
        "agent {}: stored {fresh} of {count} events up to {last}",
        format_agent_id(agent_id)
    );
    Ok(last)
}

/// An event to store for one record: its decoded payload, or a `malformed` event holding the
/// decoding error and the record's bytes in hex (never dropped).
pub(crate) fn decode_record(seq: u64, bytes: &[u8], received_ms: u64) -> NewEvent {
    let error = match event::decode_body(bytes) {
        Ok(body) => match serde_json::to_string(&body.payload) {
            Ok(payload_json) => {
                let kind = body.payload.kind().to_string();
                return NewEvent {
                    seq,
                    time_ms: body.time_ms,
                    module: body.module,
                    kind,
                    payload_json,
                };
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    let payload_json = serde_json::json!({ "error": error, "hex": hex::encode(bytes) }).to_string();
    NewEvent {
        seq,
        time_ms: received_ms,
        module: "unknown".into(),
        kind: "malformed".into(),
        payload_json,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::{EventBody, GeneratorEvent, Payload};

    #[test]
    fn decodable_record_keeps_agent_time_module_and_kind() {
        let body = EventBody {
            time_ms: 77,
            module: "generator".into(),
            payload: Payload::Generator(GeneratorEvent {
                stream: "s".into(),
                n: 4,
                body: "b".into(),
            }),
        };
        let mut bytes = Vec::new();
        event::encode_body(&body, &mut bytes).unwrap();
        let e = decode_record(9, &bytes, 1000);
        assert_eq!(
            (e.seq, e.time_ms, e.module.as_str(), e.kind.as_str()),
            (9, 77, "generator", "generator.event")
        );
        let v: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
        assert_eq!(v["Generator"]["n"], 4);
    }

    #[test]
    fn undecodable_record_becomes_a_malformed_event_with_its_bytes() {
        let e = decode_record(3, &[0xff, 0xfe], 1000);
        assert_eq!((e.kind.as_str(), e.time_ms), ("malformed", 1000));
        let v: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
        assert_eq!(v["hex"], "fffe");
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
}
