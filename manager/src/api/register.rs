//! Agent endpoints that change the registry: `POST /agents`, `POST /agents/insert` and
//! `DELETE /agents`.
//!
//! Deleting an agent revokes it: its key stops working at once, a live session is told it was
//! revoked and closed, and (unless purged) its id stays reserved and its next connection is
//! refused as revoked. An agent replaced under the `force` rules loses its session the same way.

use std::net::IpAddr;

use gatewatch_proto::{format_agent_id, Refusal};
use serde_json::{json, Map, Value};

use super::agents::{agents_list, registration_key};
use super::filter::{Filters, FIELD_FILTERS};
use super::http::Response;
use super::query::timeframe_secs;
use super::reply::{ok_json, simple, ApiError, Messages, Outcome};
use super::Call;
use crate::enroll::{new_key, valid_name, DEFAULT_GROUP, MAX_NAME_LEN};
use crate::model::now_ms;
use crate::store::{AddOutcome, Conflict, NewAgent, Replace};

const DELETE: Messages = Messages {
    all: "All selected agents were deleted",
    some: "Some agents were not deleted",
    none: "No agents were deleted",
};

/// Length of an agent key given to `POST /agents/insert`.
const KEY_LEN: usize = 64;
/// Wazuh's `force` default for `insert`: replace an agent away and registered for an hour.
const FORCE_DEFAULT: Replace = Replace {
    min_disconnected_ms: Some(3_600_000),
    min_registered_ms: 3_600_000,
};

/// The JSON object of the request body, with only `allowed` fields.
pub(super) fn json_body(call: &Call<'_>, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let body = &call.req.body;
    if body.is_empty() {
        return Err(ApiError::bad_request("Request body is required"));
    }
    let is_json = call.req.header("content-type").is_some_and(|t| {
        let media = t.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/json")
    });
    if !is_json {
        return Err(ApiError::wazuh(6002, None));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::wazuh(1018, None))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(format!(
            "{value} is not of type 'object'"
        )));
    };
    check_fields(&map, allowed)?;
    Ok(map)
}

fn check_fields(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(bad) => Err(ApiError::bad_request(format!(
            "Invalid field found {{'{bad}'}}"
        ))),
    }
}

fn string_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::bad_request(format!(
            "{other} is not of type 'string' (field {name})"
        ))),
    }
}

fn checked_name(map: &Map<String, Value>) -> Result<String, ApiError> {
    let name = string_field(map, "name")?
        .ok_or_else(|| ApiError::bad_request("'name' is a required property"))?;
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::wazuh(1738, None));
    }
    if !valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "'{name}' does not match '^[A-Za-z0-9._-]+$' (field name)"
        )));
    }
    Ok(name.to_string())
}

/// `any`, an address, or an address/prefix; otherwise error 1706.
fn checked_ip(map: &Map<String, Value>) -> Result<String, ApiError> {
    let Some(ip) = string_field(map, "ip")? else {
        return Ok("any".into());
    };
    let (addr, prefix) = match ip.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (ip, None),
    };
    let valid = ip == "any"
        || addr.parse::<IpAddr>().is_ok_and(|a| {
            let max = if a.is_ipv4() { 32 } else { 128 };
            prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
        });
    if valid {
        Ok(ip.to_string())
    } else {
        Err(ApiError::wazuh(1706, Some(ip.to_string())))
    }
}

fn bool_field(map: &Map<String, Value>, name: &str, default: bool) -> Result<bool, ApiError> {
    match map.get(name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::bad_request(format!(
            "{other} is not of type 'boolean' (field {name})"
        ))),
    }
}

fn timeframe_field(map: &Map<String, Value>, name: &str) -> Result<u64, ApiError> {
    let text = string_field(map, name)?.unwrap_or("1h");
    timeframe_secs(text).map(|s| s * 1000).ok_or_else(|| {
        ApiError::bad_request(format!(
            "'{text}' does not match '^\\d+[dhmsw]?$' (field {name})"
        ))
    })
}

/// The `force` object: when an agent in the way may be replaced (`None`: never).
fn checked_force(value: &Value) -> Result<Option<Replace>, ApiError> {
    let Value::Object(force) = value else {
        return Err(ApiError::bad_request(format!(
            "{value} is not of type 'object' (field force)"
        )));
    };
    check_fields(
        force,
        &["enabled", "disconnected_time", "after_registration_time"],
    )?;
    let min_registered_ms = timeframe_field(force, "after_registration_time")?;
    let min_disconnected_ms = match force.get("disconnected_time") {
        None => Some(3_600_000),
        Some(Value::Object(d)) => {
            check_fields(d, &["enabled", "value"])?;
            let value = timeframe_field(d, "value")?;
            bool_field(d, "enabled", true)?.then_some(value)
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'object' (field disconnected_time)"
            )))
        }
    };
    Ok(bool_field(force, "enabled", true)?.then_some(Replace {
        min_disconnected_ms,
        min_registered_ms,
    }))
}

/// `POST /agents`: `{name, ip?, force?}` → `{id, key}`.
pub(super) async fn add(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let body = json_body(call, &["name", "ip", "force"])?;
    let replace = body.get("force").map(checked_force).transpose()?.flatten();
    let new = NewAgent {
        id: None,
        name: checked_name(&body)?,
        ip: checked_ip(&body)?,
        key: new_key(),
        groups: vec![DEFAULT_GROUP.to_string()],
    };
    store_agent(call, new, replace).await
}

/// `POST /agents/insert`: like `POST /agents` with an optional `id` and `key`, and Wazuh's
/// default `force` when none is given.
pub(super) async fn insert(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&[])?;
    let body = json_body(call, &["name", "ip", "id", "key", "force"])?;
    let replace = match body.get("force") {
        Some(force) => checked_force(force)?,
        None => Some(FORCE_DEFAULT),
    };
    let id = match string_field(&body, "id")? {
        None => None,
        Some(text)
            if !text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse().ok()
        }
        Some(text) => {
            return Err(ApiError::bad_request(format!(
                "'{text}' is not a 'numbers' (field id)"
            )))
        }
    };
    let key = match string_field(&body, "key")? {
        None => new_key(),
        Some(k) if !k.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(ApiError::bad_request(
                "the key must be alphanumeric (field key)",
            ))
        }
        Some(k) if k.len() < KEY_LEN => return Err(ApiError::wazuh(1709, None)),
        Some(k) if k.len() > KEY_LEN => {
            return Err(ApiError::bad_request(format!(
                "'{k}' is too long (field key)"
            )))
        }
        Some(k) => k.to_string(),
    };
    let new = NewAgent {
        id,
        name: checked_name(&body)?,
        ip: checked_ip(&body)?,
        key,
        groups: vec![DEFAULT_GROUP.to_string()],
    };
    store_agent(call, new, replace).await
}

async fn store_agent(
    call: &Call<'_>,
    new: NewAgent,
    replace: Option<Replace>,
) -> Result<Response, ApiError> {
    let ctx = call.api.ctx.clone();
    let sessions = ctx.sessions.clone();
    let job = new.clone();
    let outcome = ctx
        .store
        .call(move |db| db.add_agent(&job, replace, now_ms(), &|id| sessions.is_connected(id)))
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        AddOutcome::Refused(Conflict::Id) => {
            Err(ApiError::wazuh(1708, new.id.map(format_agent_id)))
        }
        AddOutcome::Refused(Conflict::Name) => Err(ApiError::wazuh(1705, Some(new.name))),
        AddOutcome::Refused(Conflict::Ip) => Err(ApiError::wazuh(1706, Some(new.ip))),
        AddOutcome::Added { id, replaced } => {
            for old in replaced {
                let detail = format!(
                    "agent {} was replaced by a new registration of {:?}",
                    format_agent_id(old),
                    new.name
                );
                ctx.sessions.close(old, Refusal::UnknownAgent, detail);
            }
            log::info!(
                "api: registered {:?} as agent {}",
                new.name,
                format_agent_id(id)
            );
            let key = registration_key(id, &new.name, &new.ip, &new.key);
            let data = json!({ "id": format_agent_id(id), "key": key });
            Ok(ok_json(&simple(data), call.pretty))
        }
    }
}

/// `DELETE /agents`: the listed agents (or `all`) that pass the filters; `older_than` defaults
/// to 7 days, `status` to all.
pub(super) async fn delete(call: &Call<'_>) -> Result<Response, ApiError> {
    let q = call.query;
    let mut allowed = vec!["agents_list", "status", "older_than", "purge", "q"];
    allowed.extend(FIELD_FILTERS);
    q.only(&allowed)?;
    let purge = q.flag("purge")?;
    let filters = Filters::from_query(q, true, Some("7d"))?;
    let everyone = match q.list("agents_list")? {
        None => {
            return Err(ApiError::bad_request(
                "Missing query parameter 'agents_list'",
            ))
        }
        Some(list) => list.len() == 1 && list[0] == "all",
    };
    let wanted = if everyone { None } else { agents_list(call)? };
    let rows = call.api.rows().await?;
    let objects = call.api.objects(&rows);
    let now = (now_ms() / 1000) as i64;
    let mut outcome = Outcome::default();
    let mut targets = Vec::new();
    let id_of = |o: &Map<String, Value>| {
        o.get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u32>().ok())
    };
    match &wanted {
        None => targets.extend(
            objects
                .iter()
                .filter(|o| filters.matches(o, now))
                .filter_map(id_of)
                .filter(|id| *id != 0),
        ),
        Some(ids) => {
            for &id in ids {
                match objects.iter().find(|o| id_of(o) == Some(id)) {
                    _ if id == 0 => outcome.fail(1703, "000"),
                    None => outcome.fail(1701, format_agent_id(id)),
                    Some(o) if !filters.matches(o, now) => {
                        outcome.fail_with(1731, filters.describe(), format_agent_id(id))
                    }
                    Some(_) => targets.push(id),
                }
            }
        }
    }
    targets.sort_unstable();
    targets.dedup();
    let ctx = call.api.ctx.clone();
    let deleted = ctx
        .store
        .call(move |db| db.delete_agents(&targets, purge, now_ms()))
        .await
        .map_err(ApiError::internal)?;
    for &id in &deleted {
        let name = rows
            .iter()
            .find(|r| r.id == id)
            .map_or("", |r| r.name.as_str());
        let detail = format!(
            "agent {} ({name}) was deleted from the manager",
            format_agent_id(id)
        );
        ctx.sessions.close(id, Refusal::Revoked, detail);
        log::info!(
            "api: deleted agent {} ({name}){}",
            format_agent_id(id),
            if purge { ", purged" } else { "" }
        );
    }
    outcome.affected = deleted
        .iter()
        .map(|id| format_agent_id(*id).into())
        .collect();
    Ok(ok_json(&outcome.envelope(DELETE), call.pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn addresses_networks_and_any_are_valid_ips() {
        for ip in ["any", "10.0.0.1", "10.0.0.0/24", "::1", "fe80::1/64"] {
            assert_eq!(checked_ip(&map(json!({ "ip": ip }))).unwrap(), ip);
        }
        assert_eq!(checked_ip(&map(json!({}))).unwrap(), "any");
        for bad in ["10.0.0", "10.0.0.1/33", "host", ""] {
            assert_eq!(
                checked_ip(&map(json!({ "ip": bad }))).unwrap_err().code,
                Some(1706),
                "{bad}"
            );
        }
    }

    #[test]
    fn long_names_get_1738_and_bad_characters_a_schema_error() {
        let long = "a".repeat(129);
        assert_eq!(
            checked_name(&map(json!({ "name": long })))
                .unwrap_err()
                .code,
            Some(1738)
        );
        let bad = checked_name(&map(json!({ "name": "a b" }))).unwrap_err();
        assert_eq!((bad.status, bad.code), (400, None));
        assert!(checked_name(&map(json!({}))).is_err());
        assert!(checked_name(&map(json!({ "name": 5 }))).is_err());
    }

    #[test]
    fn force_defaults_to_an_hour_and_can_be_turned_off() {
        let default = checked_force(&json!({})).unwrap();
        assert_eq!(default, Some(FORCE_DEFAULT));
        assert_eq!(checked_force(&json!({"enabled": false})).unwrap(), None);
        let any_time = checked_force(&json!({
            "disconnected_time": {"enabled": false, "value": "1h"},
            "after_registration_time": "0s"
        }))
        .unwrap();
        assert_eq!(
            any_time,
            Some(Replace {
                min_disconnected_ms: None,
                min_registered_ms: 0
            })
        );
        assert!(checked_force(&json!({"bogus": 1})).is_err());
        assert!(checked_force(&json!({"after_registration_time": "soon"})).is_err());
    }
}
