//! The REST API on port 55000: HTTPS with the manager's certificate, the request and response
//! shapes of the Wazuh 4.x manager API, so that existing scripts work unchanged.
//!
//! ```text
//! POST|GET /security/user/authenticate   HTTP Basic → JWT (raw=true: the bare token)
//! GET  /                                 API information
//! GET|POST|DELETE /agents                list / add / delete (revoke) agents
//! POST /agents/insert                    add with a chosen id and key
//! PUT  /agents/restart                   restart all active agents, or a list
//! PUT  /agents/{id}/restart              restart one agent
//! GET  /agents/{id}/key                  an agent's registration key
//! GET  /agents/summary/status            counts by status
//! GET  /syscollector/{id}/{kind}          inventory: os, hardware, packages, processes, ports,
//!                                        netiface, netaddr
//! GET  /sca/{id}                          SCA policies with their last scan's counts
//! GET  /sca/{id}/checks/{policy_id}       the checks of one policy
//! PUT  /active-response                run an active response on agents (Wazuh's shape)
//! GET  /openapi.yaml                     the OpenAPI document of this API (no token needed)
//! ```
//!
//! Every other path needs `Authorization: Bearer <token>`. Errors are `problem+json` with
//! Wazuh's titles and codes; unknown query parameters are 400s. Each connection is served by one
//! task; a request's store work goes through the store thread, password checks off the executor.

mod active_response;
mod agents;
mod auth;
mod collection;
mod filter;
mod http;
mod jwt;
mod limiter;
mod qlang;
mod query;
mod register;
mod reply;
mod sca;
mod syscheck;
mod syscollector;
pub(crate) mod view;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpStream;
use futures_rustls::TlsAcceptor;
use serde_json::{json, Map, Value};

pub use auth::{ApiCredentials, ADMIN_FILE, ADMIN_USER};

use crate::config::ApiOptions;
use crate::conn::timeout;
use crate::model::{format_time_ms, now_ms};
use crate::server::Context;
use crate::store::AgentRow;
use crate::ManagerError;
use auth::Auth;
use http::{HttpConn, ReadError, Request, Response};
use query::Query;
use reply::{ok_json, simple, ApiError};

/// The OpenAPI document of this API, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");
/// Wazuh API version whose shapes this API answers with.
const WAZUH_API_VERSION: &str = "4.14.7";
/// A kept-alive connection without a new request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Name of the install time in `api_settings` (the `dateAdd` of agent 000).
const INSTALLED: &str = "installed_ms";

/// What the API handlers share.
pub(crate) struct ApiState {
    pub ctx: Arc<Context>,
    auth: Auth,
    hostname: String,
    installed_ms: u64,
    host_os: Map<String, Value>,
}

impl ApiState {
    /// Loads (or creates, on first start) the API's users, keys and install time. Blocks on the
    /// store: call it before serving. Returns the admin credentials when they were just made.
    pub(crate) fn open(
        ctx: Arc<Context>,
        data_dir: &std::path::Path,
        opts: &ApiOptions,
    ) -> Result<(Arc<ApiState>, Option<ApiCredentials>), ManagerError> {
        let (auth, first) = Auth::open(&ctx.store, data_dir, opts)?;
        let installed = ctx.store.call_blocking(|db| db.api_setting(INSTALLED))?;
        let installed_ms = match installed.and_then(|v| <[u8; 8]>::try_from(v).ok()) {
            Some(bytes) => u64::from_be_bytes(bytes),
            None => {
                let now = now_ms();
                ctx.store
                    .call_blocking(move |db| db.put_api_setting(INSTALLED, &now.to_be_bytes()))?;
                now
            }
        };
        let state = ApiState {
            ctx,
            auth,
            hostname: crate::config::hostname().unwrap_or_else(|| "localhost".into()),
            installed_ms,
            host_os: view::host_os(),
        };
        Ok((Arc::new(state), first))
    }

    /// Every registered agent, by id.
    pub(crate) async fn rows(&self) -> Result<Vec<AgentRow>, ApiError> {
        self.ctx
            .store
            .call(|db| db.agents())
            .await
            .map_err(ApiError::internal)
    }

    /// Agent objects: 000 first, then every registered agent with its live status.
    pub(crate) fn objects(&self, rows: &[AgentRow]) -> Vec<Map<String, Value>> {
        let mut out = Vec::with_capacity(rows.len() + 1);
        out.push(view::manager_object(
            &self.hostname,
            self.installed_ms,
            &self.host_os,
        ));
        for row in rows {
            let status = view::status_of(row, self.ctx.sessions.is_connected(row.id));
            out.push(view::agent_object(row, status, &self.hostname));
        }
        out
    }
}

/// One request being answered.
pub(crate) struct Call<'a> {
    pub api: &'a ApiState,
    pub req: &'a Request,
    pub query: &'a Query,
    pub pretty: bool,
}

/// Serves one API connection, request after request, until the client closes or goes idle.
pub(crate) async fn serve_connection(
    api: Arc<ApiState>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let io_timeout = api.ctx.io_timeout;
    let tls = match timeout(io_timeout, acceptor.accept(tcp)).await {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => return log::info!("api: {peer}: TLS handshake failed: {e}"),
        None => return log::info!("api: {peer}: TLS handshake timed out"),
    };
    let mut conn = HttpConn::new(tls, io_timeout, IDLE_TIMEOUT);
    loop {
        let (response, keep_alive) = match conn.read_request().await {
            Ok(req) => {
                let response = respond(&api, &req, peer.ip()).await;
                log::debug!(
                    "api: {peer}: {} {} → {}",
                    req.method,
                    req.path,
                    response.status
                );
                (response, req.keep_alive)
            }
            Err(ReadError::Closed) => break,
            Err(ReadError::Io(e)) => {
                log::debug!("api: {peer}: {e}");
                break;
            }
            Err(ReadError::Bad { status, detail }) => {
                log::info!("api: {peer}: refused request: {detail}");
                (ApiError::transport(status, detail).response(false), false)
            }
        };
        if let Err(e) = conn.write_response(&response, keep_alive).await {
            log::debug!("api: {peer}: cannot answer: {e}");
            break;
        }
        if !keep_alive {
            break;
        }
    }
    conn.close().await;
}

async fn respond(api: &ApiState, req: &Request, peer: IpAddr) -> Response {
    let query = Query::parse(&req.query);
    let pretty = query.as_ref().is_ok_and(Query::pretty);
    match handle(api, req, peer, query).await {
        Ok(response) => response,
        Err(e) => e.response(pretty),
    }
}

/// The API's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Root,
    Login,
    OpenApi,
    Agents,
    AgentsInsert,
    AgentsRestart,
    AgentsSummary,
    AgentRestart(String),
    AgentKey(String),
    /// Agent id and sub-resource (one of `syscollector::kind`).
    Syscollector(String, &'static str),
    ScaPolicies(String),
    /// Agent id and policy id.
    ScaChecks(String, String),
    /// Agent id.
    Syscheck(String),
    ActiveResponse,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments[..] {
            [""] => Route::Root,
            ["openapi.yaml"] => Route::OpenApi,
            ["security", "user", "authenticate"] => Route::Login,
            ["agents"] => Route::Agents,
            ["agents", "insert"] => Route::AgentsInsert,
            ["active-response"] => Route::ActiveResponse,
            ["agents", "restart"] => Route::AgentsRestart,
            ["agents", "summary", "status"] => Route::AgentsSummary,
            ["agents", id, "restart"] if !id.is_empty() => Route::AgentRestart(id.to_string()),
            ["agents", id, "key"] if !id.is_empty() => Route::AgentKey(id.to_string()),
            ["syscollector", id, kind] if !id.is_empty() => {
                Route::Syscollector(id.to_string(), syscollector::kind(kind)?)
            }
            ["sca", id] if !id.is_empty() => Route::ScaPolicies(id.to_string()),
            ["syscheck", id] if !id.is_empty() => Route::Syscheck(id.to_string()),
            ["sca", id, "checks", policy] if !id.is_empty() && !policy.is_empty() => {
                Route::ScaChecks(id.to_string(), policy.to_string())
            }
            _ => return None,
        })
    }

    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Root
            | Route::OpenApi
            | Route::AgentsSummary
            | Route::AgentKey(_)
            | Route::Syscollector(..)
            | Route::ScaPolicies(_)
            | Route::ScaChecks(..)
            | Route::Syscheck(_) => &["GET"],
            Route::Login => &["GET", "POST"],
            Route::Agents => &["GET", "POST", "DELETE"],
            Route::AgentsInsert => &["POST"],
            Route::AgentsRestart | Route::AgentRestart(_) | Route::ActiveResponse => &["PUT"],
        }
    }
}

async fn handle(
    api: &ApiState,
    req: &Request,
    peer: IpAddr,
    query: Result<Query, ApiError>,
) -> Result<Response, ApiError> {
    let route = Route::of(&req.path).ok_or_else(ApiError::not_found)?;
    let methods = route.methods();
    if !methods.contains(&req.method.as_str()) {
        return Err(ApiError::method_not_allowed(methods));
    }
    if route == Route::OpenApi {
        return Ok(Response {
            status: 200,
            content_type: "application/yaml",
            headers: Vec::new(),
            body: OPENAPI.as_bytes().to_vec(),
        });
    }
    api.auth.check_not_blocked(peer)?;
    if route != Route::Login {
        api.auth.check_bearer(req.header("authorization"))?;
    }
    let query = query?;
    query.flag("wait_for_complete")?;
    let call = Call {
        api,
        req,
        pretty: query.flag("pretty")?,
        query: &query,
    };
    match (&route, req.method.as_str()) {
        (Route::Login, _) => login(&call, peer).await,
        (Route::Root, _) => info(&call),
        (Route::Agents, "GET") => agents::list(&call).await,
        (Route::Agents, "POST") => register::add(&call).await,
        (Route::Agents, _) => register::delete(&call).await,
        (Route::AgentsInsert, _) => register::insert(&call).await,
        (Route::AgentsRestart, _) => agents::restart_many(&call).await,
        (Route::AgentRestart(id), _) => agents::restart_one(&call, id).await,
        (Route::AgentKey(id), _) => agents::key(&call, id).await,
        (Route::AgentsSummary, _) => agents::summary(&call).await,
        (Route::Syscollector(id, kind), _) => syscollector::get(&call, id, kind).await,
        (Route::ScaPolicies(id), _) => sca::policies(&call, id).await,
        (Route::ScaChecks(id, policy), _) => sca::checks(&call, id, policy).await,
        (Route::Syscheck(id), _) => syscheck::files(&call, id).await,
        (Route::ActiveResponse, _) => active_response::run(&call).await,
        (Route::OpenApi, _) => Err(ApiError::not_found()),
    }
}

/// `POST|GET /security/user/authenticate`.
async fn login(call: &Call<'_>, peer: IpAddr) -> Result<Response, ApiError> {
    call.query.only(&["raw"])?;
    let raw = call.query.flag("raw")?;
    let token = call
        .api
        .auth
        .login(peer, call.req.header("authorization"))
        .await?;
    let mut response = if raw {
        Response {
            status: 200,
            content_type: "text/plain",
            headers: Vec::new(),
            body: token.into_bytes(),
        }
    } else {
        ok_json(&simple(json!({ "token": token })), call.pretty)
    };
    if call.req.method == "GET" {
        response.headers.push(("Deprecated", "true".into()));
        response
            .headers
            .push(("Link", "</openapi.yaml>; rel=\"Deprecated\"".into()));
    }
    Ok(response)
}

/// `GET /`.
fn info(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let now = format_time_ms(now_ms());
    let timestamp = now
        .strip_suffix("+00:00")
        .map_or(now.clone(), |t| format!("{t}Z"));
    let data = json!({
        "title": "Wazuh API REST",
        "api_version": WAZUH_API_VERSION,
        "revision": format!("gatewatch-{}", env!("CARGO_PKG_VERSION")),
        "license_name": "Apache-2.0",
        "license_url": "https://www.apache.org/licenses/LICENSE-2.0",
        "hostname": call.api.hostname,
        "timestamp": timestamp,
    });
    Ok(ok_json(&simple(data), call.pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes_and_unknown_ones_to_none() {
        assert_eq!(Route::of("/"), Some(Route::Root));
        assert_eq!(
            Route::of("/agents/001/key"),
            Some(Route::AgentKey("001".into()))
        );
        assert_eq!(Route::of("/agents/restart"), Some(Route::AgentsRestart));
        assert_eq!(Route::of("/agents//key"), None);
        assert_eq!(Route::of("/agents/"), None);
        assert_eq!(Route::of("/nope"), None);
        assert_eq!(
            Route::of("/syscollector/001/ports"),
            Some(Route::Syscollector("001".into(), "ports"))
        );
        assert_eq!(Route::of("/syscollector/001/nope"), None);
        assert_eq!(
            Route::of("/sca/001/checks/cis"),
            Some(Route::ScaChecks("001".into(), "cis".into()))
        );
        assert_eq!(Route::of("/sca/001/checks/"), None);
        assert_eq!(Route::of("agents"), None);
    }
}
