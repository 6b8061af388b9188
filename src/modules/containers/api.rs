//! The Engine API's JSON, read into small typed structs: the version, events, container and exec
//! inspections, and the list of running containers.
//!
//! Only the fields the module uses are declared; serde skips the rest without keeping them.
//! Events are read from `Type`, `Action` and `Actor` only: the old `status`, `id` and `from`
//! fields were removed in API 1.52 and are never looked at.

use super::ContainersConfig;
use gatewatch_proto::containers::{EngineEvent, ObjectType, RunningContainer};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The newest API version this module knows (`/v1.52`).
pub const OUR_API: (u32, u32) = (1, 52);
/// The oldest API version it accepts (Docker 1.13; events have `Type`/`Action`/`Actor`).
pub const OLDEST_API: (u32, u32) = (1, 25);

/// `GET /version`.
#[derive(Debug, Deserialize)]
pub struct Version {
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(rename = "ApiVersion", default)]
    pub api_version: String,
}

/// Parses `1.41` into `(1, 41)`.
pub fn parse_api(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version to speak: the lower of ours and the engine's, or why the engine is too old.
pub fn negotiate(engine: &str) -> Result<(u32, u32), String> {
    let theirs = parse_api(engine).ok_or_else(|| format!("engine API version {engine:.20}?"))?;
    if theirs < OLDEST_API {
        return Err(format!(
            "engine API {engine} is older than {}.{}",
            OLDEST_API.0, OLDEST_API.1
        ));
    }
    Ok(theirs.min(OUR_API))
}

/// One line of `/events`, as the engine wrote it.
#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(rename = "Type", default)]
    object: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: RawActor,
    #[serde(rename = "timeNano", default)]
    time_nano: u64,
    #[serde(default)]
    time: u64,
}

#[derive(Debug, Default, Deserialize)]
struct RawActor {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: BTreeMap<String, String>,
}

/// Reads one event line; attributes are bounded by the config.
pub fn parse_event(line: &[u8], config: &ContainersConfig) -> Result<EngineEvent, String> {
    let raw: RawEvent = serde_json::from_slice(line).map_err(|e| format!("bad event: {e}"))?;
    let object = match raw.object.as_str() {
        "container" => ObjectType::Container,
        "image" => ObjectType::Image,
        "network" => ObjectType::Network,
        "volume" => ObjectType::Volume,
        _ => ObjectType::Other,
    };
    let (action, detail) = match raw.action.split_once(':') {
        Some((a, d)) => (a.trim().to_string(), Some(d.trim().to_string())),
        None => (raw.action, None),
    };
    let mut attributes = raw.actor.attributes;
    let name = attributes.remove("name");
    let image = attributes.remove("image");
    let kept = attributes
        .into_iter()
        .take(config.max_attributes)
        .map(|(k, v)| {
            (
                cut(k, config.max_attribute_bytes),
                cut(v, config.max_attribute_bytes),
            )
        })
        .collect();
    Ok(EngineEvent {
        object,
        action,
        action_detail: detail,
        id: raw.actor.id,
        name,
        image,
        time_nano: if raw.time_nano > 0 {
            raw.time_nano
        } else {
            raw.time.saturating_mul(1_000_000_000)
        },
        attributes: kept,
        exec: None,
    })
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `GET /containers/{id}/json`: what the findings look at.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Inspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Config")]
    pub config: InspectConfig,
    #[serde(rename = "HostConfig")]
    pub host: HostConfig,
    #[serde(rename = "Mounts", deserialize_with = "null_is_empty")]
    pub mounts: Vec<Mount>,
    /// The container's execs, oldest first (podman's exec events do not name theirs).
    #[serde(rename = "ExecIDs", deserialize_with = "null_is_empty")]
    pub exec_ids: Vec<String>,
}

/// `Config` of an inspection.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InspectConfig {
    #[serde(rename = "User")]
    pub user: String,
    #[serde(rename = "Image")]
    pub image: String,
}

/// `HostConfig` of an inspection.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    #[serde(rename = "Privileged")]
    pub privileged: bool,
    #[serde(rename = "CapAdd", deserialize_with = "null_is_empty")]
    pub cap_add: Vec<String>,
    #[serde(rename = "PidMode")]
    pub pid_mode: String,
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    #[serde(rename = "IpcMode")]
    pub ipc_mode: String,
    #[serde(rename = "SecurityOpt", deserialize_with = "null_is_empty")]
    pub security_opt: Vec<String>,
    #[serde(rename = "Devices", deserialize_with = "null_is_empty")]
    pub devices: Vec<Device>,
}

/// A host device given to a container.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Device {
    #[serde(rename = "PathOnHost")]
    pub path_on_host: String,
}

/// A mount (bind or volume) of an inspection.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExecInspect {
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    #[serde(rename = "ProcessConfig")]
    pub process: ProcessConfig,
}

/// `ProcessConfig` of an exec inspection.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    pub entrypoint: String,
    #[serde(deserialize_with = "null_is_empty")]
    pub arguments: Vec<String>,
    pub user: String,
    pub tty: bool,
    pub privileged: bool,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListedContainer {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Names", deserialize_with = "null_is_empty")]
    names: Vec<String>,
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Created")]
    created: i64,
}

/// Reads the list of running containers: at most `max`, and how many were left out.
pub fn parse_list(body: &[u8], max: usize) -> Result<(Vec<RunningContainer>, u64), String> {
    let listed: Vec<ListedContainer> =
        serde_json::from_slice(body).map_err(|e| format!("bad container list: {e}"))?;
    let omitted = listed.len().saturating_sub(max) as u64;
    let containers = listed
        .into_iter()
        .take(max)
        .map(|c| RunningContainer {
            id: c.id,
            name: c
                .names
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            image: c.image,
            state: c.state,
            created: c.created,
        })
        .collect();
    Ok((containers, omitted))
}

/// The engine writes `null` for empty lists.
fn null_is_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_api_version_is_spoken() {
        assert_eq!(negotiate("1.41"), Ok((1, 41)));
        assert_eq!(negotiate("1.99"), Ok(OUR_API));
        assert!(negotiate("1.12").is_err());
    }

    #[test]
    fn events_are_read_from_type_action_and_actor_without_status() {
        // API 1.52 shape: no `status`, `id` or `from`.
        let line = br#"{"Type":"container","Action":"exec_start: sh -c id","Actor":{"ID":"abc","Attributes":{"execID":"e1","image":"busybox","name":"web"}},"scope":"local","time":1,"timeNano":1000000001}"#;
        let e = parse_event(line, &ContainersConfig::default()).unwrap();
        assert_eq!(e.object, ObjectType::Container);
        assert_eq!(e.action, "exec_start");
        assert_eq!(e.action_detail.as_deref(), Some("sh -c id"));
        assert_eq!((e.id.as_str(), e.name.as_deref()), ("abc", Some("web")));
        assert_eq!(e.attributes, vec![("execID".into(), "e1".into())]);
        assert_eq!(e.time_nano, 1_000_000_001);
    }
}
