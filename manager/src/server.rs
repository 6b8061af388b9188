//! What both services share: the context every connection handler gets, and the accept loop that
//! bounds how many connections are served at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use smol::lock::Semaphore;
use smol::Executor;

use gatewatch_proto::Command;

use crate::model::now_ms;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::NotConnected;

/// State shared by the connection handlers.
pub(crate) struct Context {
    /// The store thread.
    pub store: Store,
    /// Live sessions.
    pub sessions: Arc<Sessions>,
    /// Limit for the TLS handshake, each handshake message and each write.
    pub io_timeout: Duration,
    /// A session silent for this long is closed.
    pub idle_timeout: Duration,
    /// Enrollment password, if one is required.
    pub password: Option<String>,
    /// Whether enrollment requires an agent certificate (`--agent-ca`).
    pub require_agent_cert: bool,
    /// DER of the CA given to agents at enrollment.
    pub ca_der: Vec<u8>,
}

impl Context {
    /// Queues a command for a connected agent, records it in the store, and returns its id.
    pub(crate) fn send_command(
        &self,
        agent_id: u32,
        command: Command,
    ) -> Result<u64, NotConnected> {
        let json = serde_json::to_string(&command).unwrap_or_default();
        let id = self.sessions.send_command(agent_id, command)?;
        log::info!(
            "command {id} {json} queued for agent {}",
            gatewatch_proto::format_agent_id(agent_id)
        );
        self.store.spawn(move |db| {
            if let Err(e) = db.command_sent(id, agent_id, &json, now_ms()) {
                log::warn!("command {id}: {e}");
            }
        });
        Ok(id)
    }
}

/// Accepts connections for `service` until the executor is gone, serving at most `max` at once
/// (the ones over the limit are closed at once, so a flood cannot exhaust memory or descriptors).
pub(crate) async fn accept_loop<F, Fut>(
    service: &'static str,
    listener: TcpListener,
    max: usize,
    executor: Weak<Executor<'static>>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                log::warn!("{service}: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = permits.try_acquire_arc() else {
            log::warn!("{service}: {peer}: {max} connections already open, closing this one");
            continue;
        };
        let Some(executor) = executor.upgrade() else {
            return;
        };
        let served = handle(tcp, peer);
        executor
            .spawn(async move {
                served.await;
                drop(permit);
            })
            .detach();
    }
}
