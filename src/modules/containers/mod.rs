//! Container security monitoring: watches a Docker-compatible engine (Docker, podman's
//! compatibility service, balenaEngine) through its API socket.
//!
//! - [`http`] is a small bounded HTTP/1.1 client over the unix socket; [`body`] decodes response
//!   bodies (chunked or not) without buffering; [`framer`] cuts the event stream into events with
//!   a fixed maximum size.
//! - [`api`] reads the engine's JSON (version, events by `Type`/`Action`/`Actor`, inspections).
//! - [`findings`] turns an inspection into alerts with severities (table in `config.rs`).
//! - [`watch`] handles one event: filter, de-duplicate, enrich, report; `module` runs the
//!   connection, the inventories and the reconnections.
//!
//! Memory is bounded by configuration, not by what the engine sends: one event buffer of
//! `max_event_bytes`, one read buffer, one response body of at most `max_response_bytes`.

#[cfg(feature = "containers")]
pub mod api;
#[cfg(feature = "containers")]
pub mod body;
mod config;
#[cfg(feature = "containers")]
pub mod findings;
#[cfg(feature = "containers")]
pub mod framer;
#[cfg(feature = "containers")]
pub mod http;
#[cfg(feature = "containers")]
mod module;
#[cfg(all(test, feature = "containers"))]
mod tests;
#[cfg(feature = "containers")]
pub mod watch;

pub use config::ContainersConfig;
#[cfg(feature = "containers")]
pub use module::Containers;
