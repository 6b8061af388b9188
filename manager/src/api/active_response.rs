//! `PUT /active-response` in Wazuh's shape: body `{command, arguments, alert}`, `agents_list`
//! (ids, `all`, or absent for every active agent); the command travels to each agent as
//! `Command::ActiveResponse`, and what the agent did comes back as `response.*` events.
//!
//! Unlike Wazuh, the manager keeps no list of defined commands (no 1652): the agent decides, and
//! refuses an unknown response with an event that says so.

use gatewatch_proto::{format_agent_id, Command};
use serde_json::{Map, Value};

use super::agents::agents_list;
use super::http::Response;
use super::register::json_body;
use super::reply::{ok_json, ApiError, Messages, Outcome};
use super::Call;

const AR: Messages = Messages {
    all: "AR command was sent to all agents",
    some: "AR command was not sent to some agents",
    none: "AR command was not sent to any agent",
};

/// `PUT /active-response`.
pub(super) async fn run(call: &Call<'_>) -> Result<Response, ApiError> {
    call.query.only(&["agents_list"])?;
    let everyone = match call.query.list("agents_list")? {
        None => true,
        Some(list) => list.len() == 1 && list[0] == "all",
    };
    let wanted = if everyone { None } else { agents_list(call)? };
    let body = json_body(call, &["command", "arguments", "alert"])?;
    let command = request(&body)?;
    let rows = call.api.rows().await?;
    let mut outcome = Outcome::default();
    let quiet = wanted.is_none();
    let ids: Vec<u32> = match wanted {
        Some(ids) => ids,
        None => rows
            .iter()
            .map(|r| r.id)
            .filter(|id| call.api.ctx.sessions.is_connected(*id))
            .collect(),
    };
    for id in ids {
        let code = if id == 0 {
            Some(1703)
        } else if !rows.iter().any(|r| r.id == id) {
            Some(1701)
        } else {
            match call.api.ctx.send_command(id, command.clone()) {
                Ok(_) => {
                    outcome.affected.push(format_agent_id(id).into());
                    None
                }
                Err(_) => Some(1707),
            }
        };
        if let (Some(code), false) = (code, quiet) {
            outcome.fail(code, format_agent_id(id));
        }
    }
    outcome
        .affected
        .sort_by_key(|id| id.as_str().and_then(|s| s.parse::<u32>().ok()));
    Ok(ok_json(&outcome.envelope(AR), call.pretty))
}

/// The command the body asks for (`command` required; `arguments` strings; `alert` an object).
fn request(body: &Map<String, Value>) -> Result<Command, ApiError> {
    let command = match body.get("command") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(ApiError::bad_request("'' is too short (field command)"))
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'string' (field command)"
            )))
        }
        None => return Err(ApiError::bad_request("'command' is a required property")),
    };
    let arguments = match body.get("arguments") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(ApiError::bad_request(format!(
                    "{other} is not of type 'string' (field arguments)"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'array' (field arguments)"
            )))
        }
    };
    let alert = match body.get("alert") {
        None => "{}".to_string(),
        Some(alert @ Value::Object(_)) => alert.to_string(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{other} is not of type 'object' (field alert)"
            )))
        }
    };
    Ok(Command::ActiveResponse {
        command,
        arguments,
        alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn the_body_becomes_an_active_response_command() {
        let cmd = request(&body(json!({
            "command": "firewall-drop600",
            "arguments": ["-x"],
            "alert": {"data": {"srcip": "203.0.113.7"}}
        })))
        .unwrap();
        assert_eq!(
            cmd,
            Command::ActiveResponse {
                command: "firewall-drop600".into(),
                arguments: vec!["-x".into()],
                alert: r#"{"data":{"srcip":"203.0.113.7"}}"#.into(),
            }
        );
    }

    #[test]
    fn malformed_bodies_are_400s() {
        for bad in [
            json!({}),
            json!({"command": ""}),
            json!({"command": 3}),
            json!({"command": "x", "arguments": "a"}),
            json!({"command": "x", "arguments": [1]}),
            json!({"command": "x", "alert": []}),
        ] {
            assert_eq!(
                request(&body(bad.clone())).unwrap_err().status,
                400,
                "{bad}"
            );
        }
    }
}
