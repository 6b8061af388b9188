//! gatewatch-manager: enrolls gatewatch agents, receives and stores their events, and sends them
//! commands.
//!
//! [`start`] creates (or loads) the certificates in the data directory, opens the SQLite store,
//! binds the enrollment and event ports (and the REST API's, see [`ApiOptions`]) and serves them
//! on a few executor threads; it returns a [`ManagerHandle`] once every port listens. One thread
//! owns the database: events are committed before they are acked, so killing the manager at any
//! moment loses nothing an agent saw acked.
//!
//! ```no_run
//! use gatewatch_manager::{start, ManagerOptions};
//!
//! let mut opts = ManagerOptions::new("/var/lib/gatewatch-manager");
//! opts.listen_addr = "127.0.0.1".parse().unwrap();
//! let manager = start(opts)?;
//! let events = manager.subscribe();
//! println!("events on {}, enrollment on {}", manager.events_addr(), manager.enroll_addr());
//! while let Ok(event) = events.recv_blocking() {
//!     println!("{} {} {}", event.agent_name, event.seq, event.kind);
//! }
//! # Ok::<(), gatewatch_manager::ManagerError>(())
//! ```

mod api;
mod certs;
mod config;
mod conn;
mod enroll;
mod error;
mod fim;
mod inventory;
mod model;
mod receiver;
mod sca;
mod server;
mod sessions;
mod store;
mod tls;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use futures_rustls::TlsAcceptor;
use gatewatch_proto::Command;
use smol::Executor;

pub use api::{ApiCredentials, ADMIN_FILE, ADMIN_USER, OPENAPI};
pub use config::{
    check_server_name, parse_args, read_password_file, ApiOptions, Cli, ManagerOptions,
    DEFAULT_API_PORT, DEFAULT_ENROLL_PORT, DEFAULT_EVENTS_PORT, PASSWORD_ENV, USAGE,
};
pub use error::ManagerError;
pub use fim::{FimEntry, SyscheckQuery};
pub use inventory::{Items, Query, QueryError, SyncState};
pub use model::{AgentRecord, AgentStatus, NotConnected, RegisterRefused, Registered, StoredEvent};
pub use sca::ScaSyncState;

use server::{accept_loop, Context};
use sessions::Sessions;
use store::Subscribers;

/// A running manager. Dropping it (or [`ManagerHandle::shutdown`]) stops every thread and closes
/// the ports; what was acked is already committed.
pub struct ManagerHandle {
    events_addr: SocketAddr,
    enroll_addr: SocketAddr,
    api_addr: Option<SocketAddr>,
    api_credentials: Option<ApiCredentials>,
    ca_pem_path: PathBuf,
    ctx: Arc<Context>,
    subscribers: Subscribers,
    executor: Option<Arc<Executor<'static>>>,
    stop: Option<async_channel::Sender<()>>,
    workers: Vec<JoinHandle<()>>,
    store_thread: Option<JoinHandle<()>>,
}

/// Starts the manager: certificates, store, both ports, worker threads. Returns once listening.
pub fn start(opts: ManagerOptions) -> Result<ManagerHandle, ManagerError> {
    opts.validate()?;
    create_private_dir(&opts.data_dir)?;
    let material = certs::prepare(&opts)?;
    let events_tls = TlsAcceptor::from(tls::events_config(&material)?);
    let enroll_tls = TlsAcceptor::from(tls::enroll_config(&material, opts.agent_ca.as_deref())?);
    let events_listener = bind(SocketAddr::new(opts.listen_addr, opts.events_port))?;
    let enroll_listener = bind(SocketAddr::new(opts.listen_addr, opts.enroll_port))?;
    let events_addr = local_addr(&events_listener)?;
    let enroll_addr = local_addr(&enroll_listener)?;
    let api_listener = match &opts.api {
        Some(api) => {
            let tls = TlsAcceptor::from(tls::api_config(&material)?);
            let listener = bind(SocketAddr::new(opts.listen_addr, api.port))?;
            Some((tls, listener, api.max_connections))
        }
        None => None,
    };
    let api_addr = api_listener
        .as_ref()
        .map(|(_, listener, _)| local_addr(listener))
        .transpose()?;

    let subscribers = Subscribers::default();
    let (store, store_thread) = store::start(&opts.data_dir, subscribers.clone())?;
    let last_command = match store.call_blocking(|db| db.last_command_id()) {
        Ok(id) => id,
        Err(e) => {
            store.stop();
            let _ = store_thread.join();
            return Err(e);
        }
    };
    let ctx = Arc::new(Context {
        store,
        sessions: Arc::new(Sessions::new(last_command)),
        io_timeout: opts.io_timeout,
        idle_timeout: opts.session_idle_timeout,
        password: opts.password.clone(),
        require_agent_cert: opts.agent_ca.is_some(),
        ca_der: material.ca_der.to_vec(),
    });
    let executor = Arc::new(Executor::new());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    // From here on, dropping the handle cleans up whatever was started.
    let mut handle = ManagerHandle {
        events_addr,
        enroll_addr,
        api_addr,
        api_credentials: None,
        ca_pem_path: material.ca_pem_path,
        ctx: ctx.clone(),
        subscribers,
        executor: Some(executor.clone()),
        stop: Some(stop_tx),
        workers: Vec::new(),
        store_thread: Some(store_thread),
    };

    let mut services = vec![
        (
            "events",
            events_listener,
            opts.max_sessions,
            Service::Events(events_tls),
        ),
        (
            "enroll",
            enroll_listener,
            opts.max_enroll_connections,
            Service::Enroll(enroll_tls),
        ),
    ];
    if let (Some((tls, listener, max)), Some(api_opts)) = (api_listener, &opts.api) {
        let (state, first) = api::ApiState::open(ctx.clone(), &opts.data_dir, api_opts)?;
        handle.api_credentials = first;
        services.push(("api", listener, max, Service::Api(tls, state)));
    }
    for (name, listener, max, service) in services {
        let (ctx, weak) = (ctx.clone(), Arc::downgrade(&executor));
        let serve = move |tcp, peer| service.serve(ctx.clone(), tcp, peer);
        executor
            .spawn(accept_loop(name, listener, max, weak, serve))
            .detach();
    }
    for i in 0..opts.worker_threads {
        let (executor, stop) = (executor.clone(), stop_rx.clone());
        // Each worker runs tasks until the stop channel closes.
        let run =
            move || smol::block_on(executor.run(async move { while stop.recv().await.is_ok() {} }));
        let worker = std::thread::Builder::new()
            .name(format!("gatewatch-worker-{i}"))
            .spawn(run)
            .map_err(|e| ManagerError::Config(format!("cannot start a worker thread: {e}")))?;
        handle.workers.push(worker);
    }
    match api_addr {
        Some(api) => log::info!(
            "listening: events on {events_addr}, enrollment on {enroll_addr}, API on {api}"
        ),
        None => log::info!("listening: events on {events_addr}, enrollment on {enroll_addr}"),
    }
    Ok(handle)
}

/// The TLS services, each with its acceptor.
enum Service {
    Events(TlsAcceptor),
    Enroll(TlsAcceptor),
    Api(TlsAcceptor, Arc<api::ApiState>),
}

impl Service {
    fn serve(
        &self,
        ctx: Arc<Context>,
        tcp: async_net::TcpStream,
        peer: SocketAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match self {
            Service::Events(tls) => {
                Box::pin(receiver::serve_connection(ctx, tls.clone(), tcp, peer))
            }
            Service::Enroll(tls) => Box::pin(enroll::serve_connection(ctx, tls.clone(), tcp, peer)),
            Service::Api(tls, state) => {
                Box::pin(api::serve_connection(state.clone(), tls.clone(), tcp, peer))
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), ManagerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ManagerError::file(dir, "--data-dir: cannot create", e))
}

fn bind(addr: SocketAddr) -> Result<async_net::TcpListener, ManagerError> {
    let listener = TcpListener::bind(addr).map_err(|source| ManagerError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    async_net::TcpListener::try_from(listener).map_err(|source| ManagerError::Listen {
        addr: addr.to_string(),
        source,
    })
}

fn local_addr(listener: &async_net::TcpListener) -> Result<SocketAddr, ManagerError> {
    listener
        .local_addr()
        .map_err(|source| ManagerError::Listen {
            addr: "a bound socket".into(),
            source,
        })
}

impl ManagerHandle {
    /// Address of the event port (1514 unless configured).
    pub fn events_addr(&self) -> SocketAddr {
        self.events_addr
    }

    /// Address of the enrollment port (1515 unless configured).
    pub fn enroll_addr(&self) -> SocketAddr {
        self.enroll_addr
    }

    /// Address of the REST API, when it is served.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The API user and password made at this start (the first one, or one with
    /// [`ApiOptions::reset_admin_password`]; otherwise `None`): the caller shows them to the
    /// operator once. They are also in [`ADMIN_FILE`] in the data directory.
    pub fn api_credentials(&self) -> Option<&ApiCredentials> {
        self.api_credentials.as_ref()
    }

    /// PEM file of the CA that agents pin (the generated `ca.pem`, or `--ca-cert`).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.ca_pem_path.clone()
    }

    /// A feed of newly stored events (after their commit). The channel is bounded: if the reader
    /// lags, the newest events are dropped for it (the store and `events.jsonl` still have them).
    pub fn subscribe(&self) -> async_channel::Receiver<StoredEvent> {
        self.subscribers.subscribe()
    }

    /// Queues a command for a connected agent and returns the command id; its result arrives as
    /// a `CommandResult` and is stored in `command_results`.
    pub fn send_command(&self, agent_id: u32, command: Command) -> Result<u64, NotConnected> {
        self.ctx.send_command(agent_id, command)
    }

    /// Every registered agent with its status. Blocks on the store thread: call it from a plain
    /// thread (or wrap it), not from inside an executor task.
    pub fn agents(&self) -> Result<Vec<AgentRecord>, ManagerError> {
        let rows = self.ctx.store.call_blocking(|db| db.agents())?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let status = api::view::status_of(&r, self.ctx.sessions.is_connected(r.id));
                AgentRecord {
                    id: r.id,
                    name: r.name,
                    ip: r.ip,
                    key: r.key,
                    groups: r.groups,
                    registered_ms: r.registered_ms,
                    last_keepalive_ms: r.last_keepalive_ms,
                    version: r.version,
                    status,
                }
            })
            .collect())
    }

    /// The FIM state of an agent in Wazuh's `GET /syscheck/{agent_id}` item shape: the files its
    /// `fim.*` events reported and did not report deleted, filtered, sorted and paged by `query`.
    /// An unknown sort field is a [`ManagerError::Config`] naming it. Blocks like [`Self::agents`].
    pub fn syscheck(
        &self,
        agent_id: u32,
        query: &SyscheckQuery,
    ) -> Result<Vec<FimEntry>, ManagerError> {
        self.syscheck_page(agent_id, query).map(|(items, _)| items)
    }

    /// Like [`Self::syscheck`], with the number of items selected before paging (Wazuh's
    /// `total_affected_items`).
    pub fn syscheck_page(
        &self,
        agent_id: u32,
        query: &SyscheckQuery,
    ) -> Result<(Vec<FimEntry>, u64), ManagerError> {
        let query = query.clone();
        self.ctx
            .store
            .call_blocking(move |db| db.syscheck(agent_id, &query))
    }

    /// Registers an agent as enrollment would (same name and group rules, same replacement of an
    /// offline agent of that name), for the API's `POST /agents`. Blocks like [`Self::agents`].
    pub fn register_agent(
        &self,
        name: &str,
        groups: Vec<String>,
        ip: &str,
    ) -> Result<Registered, RegisterRefused> {
        smol::block_on(enroll::register(&self.ctx, name, groups, ip))
    }

    /// Stops serving, waits for the threads, and closes the store.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop_all(&mut self) {
        // Closing the channel ends `Executor::run` on every worker.
        drop(self.stop.take());
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
        // Dropping the executor drops its tasks: listeners and sessions close.
        drop(self.executor.take());
        if let Some(thread) = self.store_thread.take() {
            self.ctx.store.stop();
            if thread.join().is_err() {
                log::error!("the store thread panicked");
            }
        }
    }
}

impl Drop for ManagerHandle {
    fn drop(&mut self) {
        self.stop_all();
    }
}
