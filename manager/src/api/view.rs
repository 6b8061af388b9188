//! The agent object as the API shows it (Wazuh 4.x field names), for registered agents and for
//! agent `000`, the manager itself. Fields without a value are left out, never `null`.

use serde_json::{json, Map, Value};

use crate::model::format_time_ms;
use crate::store::AgentRow;
use crate::AgentStatus;

/// `lastKeepAlive` of agent 000, Wazuh's sentinel for "always alive".
pub(crate) const MANAGER_KEEPALIVE: &str = "9999-12-31T23:59:59+00:00";
/// This manager's node name (there is no cluster).
pub(crate) const NODE_NAME: &str = "node01";

/// Every field of an agent object, nested ones dotted: what `select`, `sort` and `q` accept.
pub(crate) const FIELDS: &[&str] = &[
    "id",
    "name",
    "ip",
    "registerIP",
    "status",
    "status_code",
    "os",
    "os.name",
    "os.platform",
    "os.version",
    "os.codename",
    "os.major",
    "os.minor",
    "os.uname",
    "os.arch",
    "os.build",
    "version",
    "manager",
    "node_name",
    "dateAdd",
    "lastKeepAlive",
    "disconnection_time",
    "group",
    "configSum",
    "mergedSum",
    "group_config_status",
];

/// Fields holding dates.
pub(crate) const DATE_FIELDS: [&str; 3] = ["dateAdd", "lastKeepAlive", "disconnection_time"];

/// The status an agent has now.
pub(crate) fn status_of(row: &AgentRow, connected: bool) -> AgentStatus {
    if connected {
        AgentStatus::Active
    } else if row.last_keepalive_ms.is_some() {
        AgentStatus::Disconnected
    } else {
        AgentStatus::NeverConnected
    }
}

/// `gatewatch v0.1.0` from the version an agent reports.
pub(crate) fn version_label(version: &str) -> String {
    format!("gatewatch v{}", version.trim_start_matches('v'))
}

/// The object of a registered agent; `manager` is this manager's hostname.
pub(crate) fn agent_object(
    row: &AgentRow,
    status: AgentStatus,
    manager: &str,
) -> Map<String, Value> {
    let seen = row.last_keepalive_ms.is_some();
    let mut o = Map::new();
    o.insert("id".into(), gatewatch_proto::format_agent_id(row.id).into());
    o.insert("name".into(), row.name.clone().into());
    o.insert(
        "ip".into(),
        row.last_ip.clone().unwrap_or_else(|| row.ip.clone()).into(),
    );
    o.insert("registerIP".into(), row.ip.clone().into());
    o.insert("status".into(), status.as_str().into());
    o.insert("status_code".into(), 0.into());
    if let Some(v) = &row.version {
        o.insert("version".into(), version_label(v).into());
    }
    if seen {
        o.insert("manager".into(), manager.into());
    }
    let node = if seen { NODE_NAME } else { "unknown" };
    o.insert("node_name".into(), node.into());
    o.insert("dateAdd".into(), format_time_ms(row.registered_ms).into());
    if let Some(t) = row.last_keepalive_ms {
        o.insert("lastKeepAlive".into(), format_time_ms(t).into());
    }
    if status == AgentStatus::Disconnected {
        if let Some(t) = row.disconnected_ms {
            o.insert("disconnection_time".into(), format_time_ms(t).into());
        }
    }
    o.insert("group".into(), json!(row.groups));
    let config = if seen { "synced" } else { "not synced" };
    o.insert("group_config_status".into(), config.into());
    o
}

/// The object of agent 000: the manager, always active.
pub(crate) fn manager_object(
    hostname: &str,
    installed_ms: u64,
    os: &Map<String, Value>,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("id".into(), "000".into());
    o.insert("name".into(), hostname.into());
    o.insert("ip".into(), "127.0.0.1".into());
    o.insert("registerIP".into(), "127.0.0.1".into());
    o.insert("status".into(), "active".into());
    o.insert("status_code".into(), 0.into());
    if !os.is_empty() {
        o.insert("os".into(), Value::Object(os.clone()));
    }
    o.insert(
        "version".into(),
        version_label(env!("CARGO_PKG_VERSION")).into(),
    );
    o.insert("manager".into(), hostname.into());
    o.insert("node_name".into(), NODE_NAME.into());
    o.insert("dateAdd".into(), format_time_ms(installed_ms).into());
    o.insert("lastKeepAlive".into(), MANAGER_KEEPALIVE.into());
    o.insert("group_config_status".into(), "synced".into());
    o
}

/// The `os` object of the machine the manager runs on, from `/etc/os-release` and the kernel.
pub(crate) fn host_os() -> Map<String, Value> {
    let mut os = Map::new();
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let value = |key: &str| {
        release.lines().find_map(|l| {
            l.strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_string())
        })
    };
    os.insert("arch".into(), std::env::consts::ARCH.into());
    if let Some(name) = value("NAME") {
        os.insert("name".into(), name.into());
    }
    os.insert(
        "platform".into(),
        value("ID")
            .unwrap_or_else(|| std::env::consts::OS.into())
            .into(),
    );
    if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        os.insert(
            "uname".into(),
            format!("Linux |{} |{}", kernel.trim(), std::env::consts::ARCH).into(),
        );
    }
    if let Some(version) = value("VERSION_ID") {
        os.insert("version".into(), version.into());
    }
    os
}

/// The value at a dotted `path` (`os.name`).
pub(crate) fn field<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = object.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A copy of `object` with only `fields` (and always `id`); nested fields keep their parent.
pub(crate) fn select(object: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for name in FIELDS {
        let wanted = *name == "id" || fields.iter().any(|f| f == name);
        if !wanted {
            continue;
        }
        let Some(value) = field(object, name) else {
            continue;
        };
        match name.split_once('.') {
            None => {
                out.insert((*name).into(), value.clone());
            }
            Some((parent, child)) => {
                let entry = out
                    .entry(parent)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = entry.as_object_mut() {
                    map.insert(child.into(), value.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AgentRow {
        AgentRow {
            id: 7,
            name: "gw".into(),
            ip: "any".into(),
            key: "k".into(),
            groups: vec!["default".into()],
            registered_ms: 0,
            last_keepalive_ms: None,
            version: None,
            last_ip: None,
            disconnected_ms: None,
        }
    }

    #[test]
    fn never_connected_agent_has_only_the_fields_it_knows() {
        let o = agent_object(&row(), AgentStatus::NeverConnected, "mgr");
        let keys: Vec<&str> = o.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "name",
                "ip",
                "registerIP",
                "status",
                "status_code",
                "node_name",
                "dateAdd",
                "group",
                "group_config_status"
            ]
        );
        assert_eq!(
            (o["id"].as_str(), o["ip"].as_str()),
            (Some("007"), Some("any"))
        );
        assert_eq!(o["node_name"], "unknown");
    }

    #[test]
    fn connected_agent_shows_its_address_version_and_keepalive() {
        let mut r = row();
        r.last_keepalive_ms = Some(1_700_000_000_000);
        r.last_ip = Some("10.1.1.1".into());
        r.version = Some("0.1.0".into());
        let o = agent_object(&r, AgentStatus::Active, "mgr");
        assert_eq!(o["ip"], "10.1.1.1");
        assert_eq!(o["registerIP"], "any");
        assert_eq!(o["version"], "gatewatch v0.1.0");
        assert_eq!(o["lastKeepAlive"], "2023-11-14T22:13:20+00:00");
        assert_eq!(o["manager"], "mgr");
    }

    #[test]
    fn select_keeps_id_and_nests_dotted_fields() {
        let mut os = Map::new();
        os.insert("platform".into(), "debian".into());
        os.insert("arch".into(), "x86_64".into());
        let o = manager_object("mgr", 0, &os);
        let s = select(&o, &["os.platform".into(), "name".into()]);
        assert_eq!(
            Value::Object(s),
            json!({"id": "000", "name": "mgr", "os": {"platform": "debian"}})
        );
    }
}
