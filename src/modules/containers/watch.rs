//! What the module does with one event from the stream: keep it or not, drop a repeat, enrich
//! it by inspecting the container or exec, and report it with its findings.
//!
//! Repeats happen by design: after a reconnection the stream resumes with `since=<time of the
//! last event>`, and the engine replays events at that very time. They are recognised by their
//! time, actor and action ([`Dedupe`]) and the position is stored with each reported event, so an
//! agent restart resumes where the spool stopped.

use super::api::{self, ExecInspect, Inspect};
use super::findings;
use super::http;
use super::ContainersConfig;
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::containers::{
    ContainerAlert, ContainerEvent, EngineEvent, ExecInfo, ObjectType,
};
use gatewatch_proto::Payload;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Cursor source name of the event stream's position.
pub const CURSOR: &str = "events";
/// Events remembered to recognise repeats.
const RECENT: usize = 64;

/// Whether an event is one the module reports.
pub fn is_reported(event: &EngineEvent) -> bool {
    let action = event.action.as_str();
    match event.object {
        ObjectType::Container => matches!(
            action,
            "create"
                | "start"
                | "die"
                | "destroy"
                | "kill"
                | "oom"
                | "stop"
                | "restart"
                | "pause"
                | "unpause"
                | "rename"
                | "update"
                | "exec_create"
                | "exec_start"
                | "exec_die"
                // podman's names for an exec and its end
                | "exec"
                | "exec_died"
        ),
        ObjectType::Image => matches!(
            action,
            "pull" | "push" | "delete" | "tag" | "untag" | "import" | "load" | "save"
        ),
        ObjectType::Network => matches!(
            action,
            "create" | "connect" | "disconnect" | "destroy" | "remove"
        ),
        ObjectType::Volume => {
            matches!(action, "create" | "mount" | "unmount" | "destroy" | "prune")
        }
        ObjectType::Other => false,
    }
}

fn hash_of(parts: impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

/// An event's identity: its time, actor and whole action.
pub fn event_key(event: &EngineEvent) -> u64 {
    hash_of((
        event.time_nano,
        &event.id,
        &event.action,
        &event.action_detail,
    ))
}

/// A fixed ring of recent 64-bit keys.
#[derive(Debug, Clone)]
pub struct Recent {
    keys: [u64; RECENT],
    next: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            keys: [0; RECENT],
            next: 0,
        }
    }
}

impl Recent {
    /// Whether `key` is among the recent ones.
    pub fn contains(&self, key: u64) -> bool {
        key != 0 && self.keys.contains(&key)
    }

    /// Remembers `key`, forgetting the oldest.
    pub fn insert(&mut self, key: u64) {
        self.keys[self.next] = key;
        self.next = (self.next + 1) % RECENT;
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: u64) {
        for k in self.keys.iter_mut().filter(|k| **k == key) {
            *k = 0;
        }
    }
}

/// Recognises events already reported.
#[derive(Debug, Clone, Default)]
pub struct Dedupe {
    /// Time of the last reported event (nanoseconds since the epoch, the engine's clock).
    pub last_nano: u64,
    recent: Recent,
}

impl Dedupe {
    /// Resumes from a stored cursor (time and key of the last reported event).
    pub fn from_cursor(cursor: &[u8]) -> Dedupe {
        let mut dedupe = Dedupe::default();
        if let (Some(time), Some(key)) = (cursor.get(..8), cursor.get(8..16)) {
            dedupe.last_nano = u64::from_le_bytes(time.try_into().unwrap_or_default());
            dedupe
                .recent
                .insert(u64::from_le_bytes(key.try_into().unwrap_or_default()));
        }
        dedupe
    }

    /// Admits `event` unless it was seen; returns the cursor to store with it.
    ///
    /// Only identity counts, not age: the engine replays from `since` inclusive, so a repeat has
    /// the time of an event just reported, while an older time may be real (a gateway's clock
    /// stepped back by NTP) and must not be dropped.
    pub fn admit(&mut self, event: &EngineEvent) -> Option<Vec<u8>> {
        let key = event_key(event);
        if self.recent.contains(key) {
            return None;
        }
        self.recent.insert(key);
        self.last_nano = event.time_nano;
        let mut cursor = Vec::with_capacity(16);
        cursor.extend_from_slice(&event.time_nano.to_le_bytes());
        cursor.extend_from_slice(&key.to_le_bytes());
        Some(cursor)
    }

    /// The `since` parameter that resumes after the last reported event (`None`: live only).
    pub fn since(&self) -> Option<String> {
        (self.last_nano > 0).then(|| {
            format!(
                "{}.{:09}",
                self.last_nano / 1_000_000_000,
                self.last_nano % 1_000_000_000
            )
        })
    }
}

/// The event handler's state across events and reconnections.
pub struct Watch {
    pub config: ContainersConfig,
    /// `/v1.xx`, once negotiated.
    pub prefix: String,
    pub dedupe: Dedupe,
    /// Containers already inspected (create and start would otherwise alert twice).
    inspected: Recent,
}

impl Watch {
    /// A handler resuming at `cursor` (the position stored with the last reported event).
    pub fn new(config: ContainersConfig, cursor: Option<Vec<u8>>) -> Watch {
        Watch {
            config,
            prefix: String::new(),
            dedupe: cursor.map(|c| Dedupe::from_cursor(&c)).unwrap_or_default(),
            inspected: Recent::default(),
        }
    }

    /// Handles one line of the stream: parses, filters, deduplicates, enriches, reports.
    pub async fn handle_line(
        &mut self,
        line: &[u8],
        ctx: &ModuleContext,
    ) -> Result<(), ModuleError> {
        let mut event = match api::parse_event(line, &self.config) {
            Ok(event) => event,
            Err(error) => {
                log::warn!("containers: {error}");
                return Ok(());
            }
        };
        if !is_reported(&event) {
            return Ok(());
        }
        let Some(cursor) = self.dedupe.admit(&event) else {
            return Ok(());
        };
        let alerts = self.enrich(&mut event, ctx).await;
        for alert in alerts {
            ctx.send(Payload::Container(ContainerEvent::Alert(Box::new(alert))))
                .await?;
        }
        let payload = Payload::Container(ContainerEvent::Engine(Box::new(event)));
        ctx.send_with_cursor(payload, CURSOR, cursor).await
    }

    /// Inspects what the event is about; returns the findings.
    async fn enrich(
        &mut self,
        event: &mut EngineEvent,
        ctx: &ModuleContext,
    ) -> Vec<ContainerAlert> {
        if event.object != ObjectType::Container {
            return Vec::new();
        }
        let id_key = hash_of(&event.id);
        match event.action.as_str() {
            "create" | "start" if !self.inspected.contains(id_key) => {
                self.inspected.insert(id_key);
                match self.inspect_container(&event.id, ctx).await {
                    Ok(inspect) => findings::container_findings(&inspect, &self.config.socket),
                    Err(error) => {
                        log::info!("containers: inspecting {}: {error}", event.id);
                        Vec::new()
                    }
                }
            }
            "exec_create" | "exec_start" | "exec" => {
                let exec = self.exec_of(event, ctx).await;
                let alerts = if event.action != "exec_create" {
                    exec_alerts(event, &exec)
                } else {
                    Vec::new()
                };
                event.exec = Some(exec);
                alerts
            }
            "destroy" => {
                self.inspected.remove(id_key);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    async fn inspect_container(&self, id: &str, ctx: &ModuleContext) -> Result<Inspect, String> {
        let target = format!("{}/containers/{}/json", self.prefix, encode(id));
        let body = self.get(&target, ctx).await?;
        serde_json::from_slice(&body).map_err(|e| format!("GET {target}: {e}"))
    }

    /// The exec's details: inspected when the engine still knows it, else from the `Action`.
    /// Docker names the exec in the event (`execID`); podman does not, so its container's
    /// newest exec is taken.
    async fn exec_of(&self, event: &EngineEvent, ctx: &ModuleContext) -> ExecInfo {
        let mut exec_id = event
            .attributes
            .iter()
            .find(|(k, _)| k == "execID")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if exec_id.is_empty() {
            if let Ok(inspect) = self.inspect_container(&event.id, ctx).await {
                exec_id = inspect.exec_ids.last().cloned().unwrap_or_default();
            }
        }
        if !exec_id.is_empty() {
            let target = format!("{}/exec/{}/json", self.prefix, encode(&exec_id));
            let inspected = self.get(&target, ctx).await.and_then(|body| {
                serde_json::from_slice::<ExecInspect>(&body).map_err(|e| format!("{target}: {e}"))
            });
            match inspected {
                Ok(inspect) => return findings::exec_info(&exec_id, &inspect),
                Err(error) => log::info!("containers: inspecting exec {exec_id}: {error}"),
            }
        }
        let detail = event.action_detail.as_deref().unwrap_or_default();
        ExecInfo {
            exec_id,
            command: detail.split_whitespace().map(str::to_string).collect(),
            user: String::new(),
            tty: false,
            interactive: false,
            privileged: false,
            inspected: false,
        }
    }

    /// `GET target` within the module's bounds.
    pub async fn get(&self, target: &str, ctx: &ModuleContext) -> Result<Vec<u8>, String> {
        let timeout = Duration::from_secs(self.config.request_timeout_secs.max(1));
        http::get(
            &self.config.socket,
            target,
            self.config.max_response_bytes,
            ctx.memory(),
            timeout,
        )
        .await
        .map(|r| r.body)
        .map_err(|e| e.to_string())
    }
}

fn exec_alerts(event: &EngineEvent, exec: &ExecInfo) -> Vec<ContainerAlert> {
    findings::exec_findings(exec)
        .into_iter()
        .map(|(rule, severity)| ContainerAlert {
            rule: rule.into(),
            severity,
            container_id: event.id.clone(),
            container_name: event.name.clone().unwrap_or_default(),
            image: event.image.clone().unwrap_or_default(),
            detail: exec.command.join(" "),
        })
        .collect()
}

/// Percent-encodes a path segment (ids are hex, but the engine is not trusted to say so).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_nano: u64, action: &str) -> EngineEvent {
        EngineEvent {
            object: ObjectType::Container,
            action: action.into(),
            action_detail: None,
            id: "c1".into(),
            name: None,
            image: None,
            time_nano,
            attributes: Vec::new(),
            exec: None,
        }
    }

    #[test]
    fn a_replayed_event_is_dropped_and_the_cursor_resumes_after_it() {
        let mut dedupe = Dedupe::default();
        let cursor = dedupe.admit(&event(5_000_000_007, "start")).unwrap();
        assert_eq!(dedupe.since().as_deref(), Some("5.000000007"));
        let mut resumed = Dedupe::from_cursor(&cursor);
        assert!(resumed.admit(&event(5_000_000_007, "start")).is_none());
        assert!(resumed.admit(&event(5_000_000_007, "die")).is_some());
        assert!(resumed.admit(&event(9_000_000_000, "destroy")).is_some());
        assert!(resumed.admit(&event(9_000_000_000, "destroy")).is_none());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("abc-12_x"), "abc-12_x");
        assert_eq!(encode("../x?y"), "%2E%2E%2Fx%3Fy");
    }
}
