//! Agent endpoints that read the registry or send commands: `GET /agents`,
//! `GET /agents/{id}/key`, `GET /agents/summary/status`, `PUT /agents/restart` and
//! `PUT /agents/{id}/restart`.

use base64ct::{Base64, Encoding};
use gatewatch_proto::{format_agent_id, Command};
use serde_json::{json, Map, Value};

use super::filter::{self, Filters};
use super::http::Response;
use super::query::agent_id;
use super::reply::{ok_json, simple, ApiError, Messages, Outcome};
use super::Call;
use crate::model::now_ms;
use crate::store::AgentRow;

const LIST: Messages = Messages {
    all: "All selected agents information was returned",
    some: "Some agents information was not returned",
    none: "No agent information was returned",
};
const KEYS: Messages = Messages {
    all: "Obtained keys for all selected agents",
    some: "Some agent keys were not obtained",
    none: "No agent keys were obtained",
};
const RESTART: Messages = Messages {
    all: "Restart command was sent to all agents",
    some: "Restart command was not sent to some agents",
    none: "Restart command was not sent to any agent",
};

/// Query parameters of `GET /agents`.
const LIST_PARAMS: [&str; 21] = [
    "agents_list",
    "offset",
    "limit",
    "select",
    "sort",
    "search",
    "status",
    "q",
    "older_than",
    "os.platform",
    "os.version",
    "os.name",
    "manager",
    "version",
    "group",
    "node_name",
    "name",
    "ip",
    "registerIP",
    "group_config_status",
    "distinct",
];

/// Largest `limit`.
const MAX_LIMIT: u64 = 100_000;

/// Ids of `agents_list`, each checked (digits, at least three).
pub(super) fn agents_list(call: &Call<'_>) -> Result<Option<Vec<u32>>, ApiError> {
    call.query
        .list("agents_list")?
        .map(|ids| ids.iter().map(|id| agent_id(id)).collect())
        .transpose()
}

/// The registration key Wazuh hands out: base64 of `ID NAME IP KEY`.
pub(super) fn registration_key(id: u32, name: &str, ip: &str, key: &str) -> String {
    Base64::encode_string(format!("{} {name} {ip} {key}", format_agent_id(id)).as_bytes())
}

fn id_of(object: &Map<String, Value>) -> u32 {
    object
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .unwrap_or(u32::MAX)
}

/// `GET /agents`.
pub(super) async fn list(call: &Call<'_>) -> Result<Response, ApiError> {
    let q = call.query;
    q.only(&LIST_PARAMS)?;
    let wanted = agents_list(call)?;
    let offset = q.integer("offset", 0, 0, u64::from(u32::MAX))? as usize;
    let limit = q.integer("limit", 500, 1, MAX_LIMIT)? as usize;
    let select = q.list("select")?;
    if let Some(fields) = &select {
        filter::check_select(fields)?;
    }
    let sort = filter::parse_sort(q.get("sort").unwrap_or(""))?;
    let distinct = q.flag("distinct")?;
    let filters = Filters::from_query(q, false, None)?;

    let rows = call.api.rows().await?;
    let mut outcome = Outcome::default();
    let mut objects = call.api.objects(&rows);
    if let Some(ids) = &wanted {
        objects.retain(|o| ids.contains(&id_of(o)));
        for id in ids {
            if !objects.iter().any(|o| id_of(o) == *id) {
                outcome.fail(1701, format_agent_id(*id));
            }
        }
    }
    let now = (now_ms() / 1000) as i64;
    objects.retain(|o| filters.matches(o, now));
    filter::sort(&mut objects, &sort);
    let mut page: Vec<Value> = objects
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| match &select {
            Some(fields) => Value::Object(super::view::select(o, fields)),
            None => Value::Object(o.clone()),
        })
        .collect();
    let mut total = objects.len();
    if distinct {
        // Unique combinations of the selected fields, ignoring the id that is always there.
        let mut seen = Vec::new();
        page.retain(|item| {
            let mut key = item.clone();
            if let Some(map) = key.as_object_mut() {
                map.remove("id");
            }
            let fresh = !seen.contains(&key);
            seen.push(key);
            fresh
        });
        total = page.len();
    }
    outcome.affected = page;
    outcome.total = Some(total);
    Ok(ok_json(&outcome.envelope(LIST), call.pretty))
}

/// `GET /agents/{agent_id}/key`.
pub(super) async fn key(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let id = agent_id(id)?;
    let mut outcome = Outcome::default();
    if id == 0 {
        outcome.fail(1703, "000");
    } else {
        let rows = call.api.rows().await?;
        match rows.iter().find(|r| r.id == id) {
            Some(r) => outcome.affected.push(json!({
                "id": format_agent_id(id),
                "key": registration_key(id, &r.name, &r.ip, &r.key),
            })),
            None => outcome.fail(1701, format_agent_id(id)),
        }
    }
    Ok(ok_json(&outcome.envelope(KEYS), call.pretty))
}

/// `GET /agents/summary/status` (agent 000 is not counted).
pub(super) async fn summary(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let rows = call.api.rows().await?;
    let objects = call.api.objects(&rows);
    let registered = &objects[1..];
    let count = |field: &str, value: &str| {
        registered
            .iter()
            .filter(|o| o.get(field).and_then(Value::as_str) == Some(value))
            .count()
    };
    let data = json!({
        "connection": {
            "active": count("status", "active"),
            "disconnected": count("status", "disconnected"),
            "never_connected": count("status", "never_connected"),
            "pending": count("status", "pending"),
            "total": registered.len(),
        },
        "configuration": {
            "synced": count("group_config_status", "synced"),
            "not_synced": count("group_config_status", "not synced"),
            "total": registered.len(),
        },
    });
    Ok(ok_json(&simple(data), call.pretty))
}

/// Sends a restart to each of `ids`, recording failures; `quiet` drops them (the "all agents"
/// form).
fn restart(call: &Call<'_>, rows: &[AgentRow], ids: &[u32], quiet: bool) -> Outcome {
    let mut outcome = Outcome::default();
    let fail = |outcome: &mut Outcome, code, id: u32| {
        if !quiet {
            outcome.fail(code, format_agent_id(id));
        }
    };
    for &id in ids {
        if id == 0 {
            fail(&mut outcome, 1703, id);
        } else if !rows.iter().any(|r| r.id == id) {
            fail(&mut outcome, 1701, id);
        } else {
            match call.api.ctx.send_command(id, Command::Restart) {
                Ok(_) => outcome.affected.push(format_agent_id(id).into()),
                Err(_) => fail(&mut outcome, 1707, id),
            }
        }
    }
    outcome
        .affected
        .sort_by_key(|id| id.as_str().and_then(|s| s.parse::<u32>().ok()));
    outcome
}

/// `PUT /agents/restart`: the listed agents, or every active one.
pub(super) async fn restart_many(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&["agents_list"])?;
    let wanted = agents_list(call)?;
    let rows = call.api.rows().await?;
    let outcome = match wanted {
        Some(ids) => restart(call, &rows, &ids, false),
        None => {
            let active: Vec<u32> = rows
                .iter()
                .map(|r| r.id)
                .filter(|id| call.api.ctx.sessions.is_connected(*id))
                .collect();
            restart(call, &rows, &active, true)
        }
    };
    Ok(ok_json(&outcome.envelope(RESTART), call.pretty))
}

/// `PUT /agents/{agent_id}/restart`.
pub(super) async fn restart_one(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let id = agent_id(id)?;
    let rows = call.api.rows().await?;
    let outcome = restart(call, &rows, &[id], false);
    Ok(ok_json(&outcome.envelope(RESTART), call.pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_key_is_base64_of_the_keys_line() {
        let k = registration_key(9, "NewHost_2", "10.0.10.11", "abc");
        assert_eq!(
            Base64::decode_vec(&k).unwrap(),
            b"009 NewHost_2 10.0.10.11 abc"
        );
    }
}
