//! Container engine events (`container.*`): what the agent's `containers` module reports about a
//! Docker-compatible engine (Docker, podman's compatibility service, balenaEngine).
//!
//! Engine events keep the engine's own vocabulary (`Type`, `Action`, `Actor`), findings from
//! inspecting a container or an exec are alerts with a severity. Options are plain `Option`s
//! (postcard is not self-describing: no skipped fields).

use serde::{Deserialize, Serialize};

/// One event of the containers module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerEvent {
    /// Something the engine reported on its event stream (boxed: larger than the others).
    Engine(Box<EngineEvent>),
    /// A risky setting found by inspecting a container or an exec.
    Alert(Box<ContainerAlert>),
    /// The periodic list of running containers.
    Inventory {
        /// The running containers (at most the configured maximum).
        containers: Vec<RunningContainer>,
        /// Running containers left out because of that maximum.
        omitted: u64,
    },
    /// The module connected to the engine and negotiated an API version.
    EngineConnected {
        /// Engine version (`Version` of `GET /version`).
        engine_version: String,
        /// The API version used (the lower of ours and the engine's).
        api_version: String,
    },
    /// The engine could not be reached or its stream ended; the module retries after a delay.
    EngineLost { error: String, retry_in_ms: u64 },
    /// An event (or response) larger than the configured maximum was skipped, unread.
    EventRejected {
        /// Its size in bytes (as much as was seen).
        bytes: u64,
        /// The maximum event size.
        limit: u64,
        /// Events rejected since the module started.
        rejected_total: u64,
    },
}

impl ContainerEvent {
    /// Kind name (see `Payload::kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            ContainerEvent::Engine(e) => match e.object {
                ObjectType::Container if e.action.starts_with("exec") => "container.exec",
                ObjectType::Container => "container.container",
                ObjectType::Image => "container.image",
                ObjectType::Network => "container.network",
                ObjectType::Volume => "container.volume",
                ObjectType::Other => "container.other",
            },
            ContainerEvent::Alert(_) => "container.alert",
            ContainerEvent::Inventory { .. } => "container.inventory",
            ContainerEvent::EngineConnected { .. } => "container.engine_connected",
            ContainerEvent::EngineLost { .. } => "container.engine_lost",
            ContainerEvent::EventRejected { .. } => "container.event_rejected",
        }
    }
}

/// The engine's object types (the event's `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectType {
    Container,
    Image,
    Network,
    Volume,
    /// Any other type (plugin, daemon, …): reported only if the module is told to.
    Other,
}

/// One event from the engine's `/events` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineEvent {
    /// The event's `Type`.
    pub object: ObjectType,
    /// The event's `Action` up to a colon (`exec_start: sh -c id` is `exec_start`).
    pub action: String,
    /// What followed the colon in `Action`, if anything (the command of an exec, the health).
    pub action_detail: Option<String>,
    /// `Actor.ID`: container id, image id, network id or volume name.
    pub id: String,
    /// `Actor.Attributes.name` (container, network or image reference).
    pub name: Option<String>,
    /// `Actor.Attributes.image` (container events).
    pub image: Option<String>,
    /// The engine's `timeNano`.
    pub time_nano: u64,
    /// The other attributes (`exitCode`, `signal`, `container`, `destination`, labels…), at
    /// most the configured number, each value cut at the configured length.
    pub attributes: Vec<(String, String)>,
    /// For `exec_create` / `exec_start` (podman: `exec`): what runs, as which user.
    pub exec: Option<ExecInfo>,
}

/// A command run inside a container (from `GET /exec/{id}/json`, or the event's `Action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    /// The exec id (`execID` attribute).
    pub exec_id: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The user it runs as; empty means the container's user.
    pub user: String,
    /// A terminal was allocated.
    pub tty: bool,
    /// Standard input is open (an interactive session).
    pub interactive: bool,
    /// The exec runs privileged.
    pub privileged: bool,
    /// The details come from inspecting the exec (false: only from the event's `Action`).
    pub inspected: bool,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Lower-case name (`low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One finding about a container or an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAlert {
    /// Stable rule name, e.g. `privileged`, `capability`, `sensitive_mount`, `host_pid`.
    pub rule: String,
    /// How serious.
    pub severity: Severity,
    /// Container id.
    pub container_id: String,
    /// Container name (without the leading `/`).
    pub container_name: String,
    /// Image as the container was created from.
    pub image: String,
    /// What exactly: the capability, the mount source, the device, the command…
    pub detail: String,
}

/// A running container, as listed by `GET /containers/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `State` (`running`, `paused`, `restarting`).
    pub state: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
}
