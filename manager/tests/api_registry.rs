//! Registering and deleting agents through the API: `POST /agents`, `POST /agents/insert`,
//! `GET /agents/{id}/key`, `DELETE /agents`, and what a deletion does to the agent's sessions.

mod api_support;
mod common;

use api_support::{api_options, ApiManager};
use base64ct::{Base64, Encoding};
use gatewatch_proto::{ManagerMessage, Refusal};
use serde_json::{json, Value};

struct Api {
    m: ApiManager,
    token: String,
}

fn api(dir: &std::path::Path) -> Api {
    let m = ApiManager::start(dir, api_options());
    let token = m.token();
    Api { m, token }
}

impl Api {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let reply = self.m.with_token(&self.token, method, path, body.as_ref());
        (reply.status, reply.json())
    }

    fn add(&self, body: Value) -> (u32, String) {
        let (status, reply) = self.send("POST", "/agents", Some(body));
        assert_eq!(status, 200, "{reply}");
        let id = reply["data"]["id"].as_str().unwrap().parse().unwrap();
        (id, reply["data"]["key"].as_str().unwrap().to_string())
    }
}

/// `ID NAME IP KEY` of a registration key.
fn decode_key(key: &str) -> Vec<String> {
    let text = String::from_utf8(Base64::decode_vec(key).unwrap()).unwrap();
    text.split(' ').map(str::to_string).collect()
}

#[test]
fn added_agent_gets_the_next_id_and_a_wazuh_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    let (status, reply) = a.send("POST", "/agents?pretty=true", Some(json!({"name": "gw-1"})));
    assert_eq!(status, 200);
    assert_eq!(
        reply.as_object().unwrap().len(),
        2,
        "data and error only: {reply}"
    );
    assert_eq!(reply["data"]["id"], "001");
    let fields = decode_key(reply["data"]["key"].as_str().unwrap());
    assert_eq!(fields[..3], ["001", "gw-1", "any"]);
    assert_eq!(fields[3].len(), 64);
    let (id, _) = a.add(json!({"name": "gw-2", "ip": "10.1.2.3"}));
    assert_eq!(id, 2);
    let (_, listed) = a.send("GET", "/agents?agents_list=002", None);
    let agent = &listed["data"]["affected_items"][0];
    assert_eq!(
        (agent["ip"].as_str(), agent["registerIP"].as_str()),
        (Some("10.1.2.3"), Some("10.1.2.3"))
    );
    assert_eq!(agent["status"], "never_connected");
}

#[test]
fn key_endpoint_returns_the_same_key_and_fails_for_000_and_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    let (id, key) = a.add(json!({"name": "gw-1"}));
    let (_, reply) = a.send("GET", &format!("/agents/{id:03}/key"), None);
    assert_eq!(
        reply["data"]["affected_items"],
        json!([{"id": "001", "key": key}])
    );
    assert_eq!(reply["message"], "Obtained keys for all selected agents");
    for (path, code) in [("/agents/000/key", 1703), ("/agents/999/key", 1701)] {
        let (status, reply) = a.send("GET", path, None);
        assert_eq!((status, reply["error"].clone()), (200, json!(1)), "{path}");
        assert_eq!(
            reply["data"]["failed_items"][0]["error"]["code"], code,
            "{path}"
        );
    }
    assert_eq!(a.send("GET", "/agents/1/key", None).0, 400);
}

#[test]
fn registration_errors_carry_wazuh_codes() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    a.add(json!({"name": "gw-1", "ip": "10.0.0.1"}));
    for (body, code) in [
        (json!({"name": "gw-1"}), 1705),
        (json!({"name": "gw-2", "ip": "10.0.0.1"}), 1706),
        (json!({"name": "gw-3", "ip": "10.0.0.300"}), 1706),
        (json!({"name": "a".repeat(129)}), 1738),
    ] {
        let (status, reply) = a.send("POST", "/agents", Some(body.clone()));
        assert_eq!(
            (status, reply["error"].clone()),
            (400, json!(code)),
            "{body}"
        );
        assert_eq!(reply["title"], "Bad Request");
    }
    for body in [
        json!({}),
        json!({"name": "gw 4"}),
        json!({"name": "gw-4", "group": "x"}),
        json!([1]),
    ] {
        let (status, reply) = a.send("POST", "/agents", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(reply.get("error").is_none(), "schema error: {reply}");
    }
    let bearer = format!("Bearer {}", a.token);
    let form = a.m.call(
        "POST",
        "/agents",
        &[("Authorization", &bearer)],
        Some(("application/x-www-form-urlencoded", br#"{"name":"gw-5"}"#)),
    );
    assert_eq!(
        (form.status, form.json()["error"].clone()),
        (406, json!(6002))
    );
    let broken = a.m.call(
        "POST",
        "/agents",
        &[("Authorization", &bearer)],
        Some(("application/json", b"{")),
    );
    assert_eq!(
        (broken.status, broken.json()["error"].clone()),
        (400, json!(1018))
    );
}

#[test]
fn insert_uses_the_given_id_and_key_and_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    let key = "A1".repeat(32);
    let (status, reply) = a.send(
        "POST",
        "/agents/insert",
        Some(json!({"name": "gw-9", "id": "9", "key": key})),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["id"], "009");
    assert_eq!(
        decode_key(reply["data"]["key"].as_str().unwrap()),
        ["009", "gw-9", "any", key.as_str()]
    );
    let (_, next) = a.send("POST", "/agents", Some(json!({"name": "gw-10"})));
    assert_eq!(
        next["data"]["id"], "010",
        "new ids continue after the highest"
    );
    for (body, code) in [
        (json!({"name": "other", "id": "009"}), Some(1708u64)),
        (json!({"name": "other", "id": "000"}), Some(1708)),
        (json!({"name": "other", "key": "abc"}), Some(1709)),
        (json!({"name": "other", "key": "a".repeat(65)}), None),
        (json!({"name": "other", "id": "x1"}), None),
        (
            json!({"name": "other", "force": {"enabled": true, "bogus": 1}}),
            None,
        ),
    ] {
        let (status, reply) = a.send("POST", "/agents/insert", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply.get("error").and_then(Value::as_u64), code, "{body}");
    }
}

#[test]
fn force_replaces_an_agent_only_when_its_rules_allow() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    a.add(json!({"name": "gw-1"}));
    // Default force: registered less than an hour ago, so not replaced.
    let (status, reply) = a.send("POST", "/agents/insert", Some(json!({"name": "gw-1"})));
    assert_eq!((status, reply["error"].clone()), (400, json!(1705)));
    let now = json!({"enabled": true, "disconnected_time": {"enabled": true, "value": "0s"}, "after_registration_time": "0s"});
    let (status, reply) = a.send(
        "POST",
        "/agents",
        Some(json!({"name": "gw-1", "force": now})),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["id"], "002");
    let (_, listed) = a.send("GET", "/agents?name=gw-1", None);
    assert_eq!(listed["data"]["affected_items"][0]["id"], "002");
    assert_eq!(listed["data"]["total_affected_items"], 1);
}

#[test]
fn delete_checks_each_listed_agent_against_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    for n in 1..=3 {
        a.add(json!({"name": format!("gw-{n}")}));
    }
    // Registered just now: older_than defaults to 7 days, so not eligible.
    let (_, reply) = a.send("DELETE", "/agents?agents_list=001&status=all", None);
    assert_eq!(reply["error"], 1);
    assert_eq!(reply["message"], "No agents were deleted");
    let failed = &reply["data"]["failed_items"][0];
    assert_eq!(failed["error"]["code"], 1731);
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("older_than: 7d"),
        "{failed}"
    );

    let (_, reply) = a.send(
        "DELETE",
        "/agents?agents_list=000,001,002,999&status=never_connected&older_than=0s",
        None,
    );
    assert_eq!(reply["error"], 2);
    assert_eq!(reply["message"], "Some agents were not deleted");
    assert_eq!(reply["data"]["affected_items"], json!(["001", "002"]));
    let codes: Vec<u64> = reply["data"]["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"]["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [1701, 1703]);
    let (_, listed) = a.send("GET", "/agents", None);
    assert_eq!(
        listed["data"]["total_affected_items"], 2,
        "000 and 003 remain"
    );

    // `all` skips what does not match, without failed items.
    let (_, reply) = a.send(
        "DELETE",
        "/agents?agents_list=all&status=active&older_than=0s",
        None,
    );
    assert_eq!(
        (
            reply["error"].clone(),
            reply["data"]["total_affected_items"].clone()
        ),
        (json!(0), json!(0))
    );
    let (_, reply) = a.send(
        "DELETE",
        "/agents?agents_list=all&status=all&older_than=0s",
        None,
    );
    assert_eq!(reply["data"]["affected_items"], json!(["003"]));
    assert_eq!(
        a.send("DELETE", "/agents?status=all", None).0,
        400,
        "agents_list is required"
    );
}

#[test]
fn deleted_id_stays_reserved_unless_purged() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    a.add(json!({"name": "kept"}));
    a.add(json!({"name": "purged"}));
    a.send(
        "DELETE",
        "/agents?agents_list=001&status=all&older_than=0s",
        None,
    );
    a.send(
        "DELETE",
        "/agents?agents_list=002&status=all&older_than=0s&purge=true",
        None,
    );
    let (status, reply) = a.send(
        "POST",
        "/agents/insert",
        Some(json!({"name": "again", "id": "001"})),
    );
    assert_eq!((status, reply["error"].clone()), (400, json!(1708)));
    let (status, _) = a.send(
        "POST",
        "/agents/insert",
        Some(json!({"name": "again", "id": "002"})),
    );
    assert_eq!(status, 200);
    let (status, _) = a.send("POST", "/agents", Some(json!({"name": "kept"})));
    assert_eq!(status, 200, "the name of a deleted agent is free");
}

fn key_of(registration_key: &str) -> String {
    decode_key(registration_key)[3].clone()
}

#[test]
fn deleting_an_agent_closes_its_session_and_refuses_it_as_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    let (id, key) = a.add(json!({"name": "gw-1"}));
    let key = key_of(&key);
    let (mut live, _) = common::session(&a.m.handle, id, &key);
    let (_, reply) = a.send(
        "DELETE",
        "/agents?agents_list=001&status=all&older_than=0s",
        None,
    );
    assert_eq!(reply["data"]["affected_items"], json!(["001"]));
    match live.recv::<ManagerMessage>() {
        Some(ManagerMessage::Refused { reason, detail }) => {
            assert_eq!(reason, Refusal::Revoked);
            assert!(detail.contains("deleted"), "{detail}");
        }
        other => panic!("expected the session to be refused, got {other:?}"),
    }
    common::eventually("the session to close", || live.is_closed());
    match common::hello(&a.m.handle, id, gatewatch_proto::PROTOCOL_VERSION) {
        Some(ManagerMessage::Refused { reason, detail }) => {
            assert_eq!(reason, Refusal::Revoked);
            assert!(detail.contains("gw-1"), "{detail}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn purged_agent_is_refused_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let a = api(dir.path());
    let (id, _) = a.add(json!({"name": "gw-1"}));
    a.send(
        "DELETE",
        "/agents?agents_list=001&status=all&older_than=0s&purge=true",
        None,
    );
    assert_eq!(
        common::hello(&a.m.handle, id, gatewatch_proto::PROTOCOL_VERSION),
        Some(ManagerMessage::Refused {
            reason: Refusal::UnknownAgent,
            detail: "no agent 001 is registered".into()
        })
    );
}
