//! Active response: the agent acts on threats — blocks an address, kills a process, quarantines
//! a file, locks an account, or runs the operator's own script — when the manager orders it
//! (`PUT /active-response`) or when one of its **local rules** fires, which works offline.
//!
//! ```text
//! manager ── Command::ActiveResponse ──► command handler ──(bounded)──┐
//! modules ── events ──► pipeline ──(tap: try_send, lossy)──► rules ───┤
//!                                                                    ▼
//!     guard (manager, loopback, own, allow list; pid 1, the agent) → ledger (reversal saved
//!     first) → built-in or custom action (or dry run) → `response.*` event → timer → reversal
//! ```
//!
//! Reversals are kept in a small file in the module's state directory, so they run after a
//! restart or a reboot (overdue ones at once). Repeated offenders get longer timeouts. See
//! `docs/adr/007-active-response.md`.
//!
//! ```toml
//! [modules.response]
//! enabled = true
//! allow_list = ["10.0.0.0/8"]            # never acted on (besides manager, loopback, own)
//! custom_dir = "/etc/gatewatch/active-response"   # `!name` responses (Wazuh's JSON on stdin)
//!
//! [[modules.response.rules]]              # works offline
//! name = "sshd-bruteforce"
//! module = "logcollector"
//! pattern = 'sshd\[\d+\]: Failed password for .* from (?P<target>[0-9a-fA-F.:]+)'
//! threshold = 5                           # within window_secs (default 60), per address
//! response = "firewall-drop"              # host-deny, null-route, kill, quarantine, …
//! timeout_secs = 600
//!
//! [[modules.response.rules]]
//! name = "dropped-script"
//! module = "fim"
//! kind = "fim.added"
//! pattern = '^/srv/upload/.*\.sh$'        # the whole match (the path) is the target
//! response = "quarantine"                 # restored with `gatewatch response restore ID`
//! ```

mod config;
pub use config::{FirewallTool, ResponseConfig, RuleConfig};

#[cfg(feature = "response")]
mod action;
#[cfg(feature = "response")]
mod builtin;
#[cfg(feature = "response")]
mod custom;
#[cfg(feature = "response")]
mod engine;
#[cfg(feature = "response")]
mod json;
#[cfg(feature = "response")]
mod ledger;
#[cfg(feature = "response")]
mod module;
#[cfg(feature = "response")]
mod quarantine;
#[cfg(feature = "response")]
mod rules;
// Always compiled: the configuration's check validates the allow list with it.
#[cfg_attr(not(feature = "response"), allow(dead_code))]
mod safety;
#[cfg(all(test, feature = "response"))]
mod tests;

#[cfg(feature = "response")]
pub use module::ResponseModule;
#[cfg(feature = "response")]
pub use quarantine::{restore, Sidecar};

/// Where quarantined files go: `quarantine_dir`, else `quarantine` in the module's state
/// directory (`module_state_dir`, i.e. `<agent.state_dir>/modules/response`).
pub fn quarantine_dir(
    config: &ResponseConfig,
    module_state_dir: &std::path::Path,
) -> std::path::PathBuf {
    config
        .quarantine_dir
        .clone()
        .unwrap_or_else(|| module_state_dir.join("quarantine"))
}

/// A response the manager ordered (`Command::ActiveResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRequest {
    /// Response name, Wazuh style (`firewall-drop`, `firewall-drop600`, `!script`).
    pub command: String,
    /// Extra arguments.
    pub arguments: Vec<String>,
    /// The alert as JSON text.
    pub alert: String,
}

/// The command handler's side.
pub type RequestSender = async_channel::Sender<ResponseRequest>;
/// The module's side.
pub type RequestReceiver = async_channel::Receiver<ResponseRequest>;

/// Ordered responses that may wait for the module at once; more are answered "busy".
pub const REQUEST_QUEUE: usize = 8;

/// The channel between the command handler and the module.
pub fn request_channel() -> (RequestSender, RequestReceiver) {
    async_channel::bounded(REQUEST_QUEUE)
}

/// The event tap the module's local rules need, when the module runs and has rules.
pub fn tap_for(
    config: &crate::config::Config,
) -> Option<(
    std::rc::Rc<crate::pipeline::tap::Tap>,
    crate::pipeline::tap::TapReceiver,
)> {
    let response = &config.modules.response;
    if !cfg!(feature = "response") || !response.enabled || response.rules.is_empty() {
        return None;
    }
    let mut modules: Vec<String> = response.rules.iter().map(|r| r.module.clone()).collect();
    modules.sort();
    modules.dedup();
    Some(crate::pipeline::tap::Tap::new(
        modules,
        response.tap_capacity,
    ))
}
