//! Restart commands through the API: they reach a connected agent over its live session, and an
//! agent that is not connected is a failed item, as in Wazuh.

mod api_support;
mod common;

use api_support::{api_options, ApiManager};
use base64ct::{Base64, Encoding};
use gatewatch_proto::{Command, ManagerMessage};
use serde_json::{json, Value};

struct Fleet {
    m: ApiManager,
    token: String,
}

impl Fleet {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = self.m.with_token(&self.token, method, path, body.as_ref());
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }

    /// Adds an agent and returns (id, secret key).
    fn add(&self, name: &str) -> (u32, String) {
        let reply = self.send("POST", "/agents", Some(json!({ "name": name })));
        let key = Base64::decode_vec(reply["data"]["key"].as_str().unwrap()).unwrap();
        let text = String::from_utf8(key).unwrap();
        let id = reply["data"]["id"].as_str().unwrap().parse().unwrap();
        (id, text.rsplit(' ').next().unwrap().to_string())
    }
}

fn fleet(dir: &std::path::Path) -> Fleet {
    let m = ApiManager::start(dir, api_options());
    let token = m.token();
    Fleet { m, token }
}

fn expect_restart(client: &mut common::Client) {
    match client.recv::<ManagerMessage>() {
        Some(ManagerMessage::Command {
            command: Command::Restart,
            ..
        }) => {}
        other => panic!("expected a restart command, got {other:?}"),
    }
}

#[test]
fn restart_list_reaches_connected_agents_and_fails_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let (a, key_a) = f.add("gw-a");
    let (b, key_b) = f.add("gw-b");
    f.add("gw-offline");
    let (mut ca, _) = common::session(&f.m.handle, a, &key_a);
    let (mut cb, _) = common::session(&f.m.handle, b, &key_b);
    let reply = f.send(
        "PUT",
        "/agents/restart?agents_list=002,001,003,000,999",
        None,
    );
    assert_eq!(reply["error"], 2);
    assert_eq!(
        reply["message"],
        "Restart command was not sent to some agents"
    );
    assert_eq!(reply["data"]["affected_items"], json!(["001", "002"]));
    let failed: Vec<(u64, Value)> = reply["data"]["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["error"]["code"].as_u64().unwrap(), f["id"].clone()))
        .collect();
    assert_eq!(
        failed,
        [
            (1701, json!(["999"])),
            (1703, json!(["000"])),
            (1707, json!(["003"]))
        ]
    );
    expect_restart(&mut ca);
    expect_restart(&mut cb);
}

#[test]
fn restart_without_a_list_goes_to_every_active_agent_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let (a, key_a) = f.add("gw-a");
    f.add("gw-offline");
    let none = f.send("PUT", "/agents/restart", None);
    assert_eq!(none["error"], 0);
    assert_eq!(none["message"], "Restart command was not sent to any agent");
    let (mut ca, _) = common::session(&f.m.handle, a, &key_a);
    let reply = f.send("PUT", "/agents/restart", None);
    assert_eq!(reply["error"], 0);
    assert_eq!(reply["message"], "Restart command was sent to all agents");
    assert_eq!(reply["data"]["affected_items"], json!(["001"]));
    assert_eq!(reply["data"]["failed_items"], json!([]));
    expect_restart(&mut ca);
}

#[test]
fn restart_of_one_agent_reports_failures_as_items_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let (a, key_a) = f.add("gw-a");
    f.add("gw-offline");
    let (mut ca, _) = common::session(&f.m.handle, a, &key_a);
    let ok = f.send("PUT", "/agents/001/restart", None);
    assert_eq!(
        (ok["error"].clone(), ok["data"]["affected_items"].clone()),
        (json!(0), json!(["001"]))
    );
    expect_restart(&mut ca);
    for (path, code) in [
        ("/agents/000/restart", 1703),
        ("/agents/999/restart", 1701),
        ("/agents/002/restart", 1707),
    ] {
        let reply = f.send("PUT", path, None);
        assert_eq!(reply["error"], 1, "{path}");
        assert_eq!(
            reply["data"]["failed_items"][0]["error"]["code"], code,
            "{path}"
        );
    }
    let bad =
        f.m.with_token(&f.token, "PUT", "/agents/wrong_id/restart", None);
    assert_eq!(bad.status, 400);
}

#[test]
fn restart_is_recorded_as_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let (a, key_a) = f.add("gw-a");
    let (mut ca, _) = common::session(&f.m.handle, a, &key_a);
    f.send("PUT", "/agents/001/restart", None);
    expect_restart(&mut ca);
    common::eventually("the command in manager.db", || {
        common::query(dir.path(), "SELECT agent_id, command FROM commands")
            == vec![vec!["1".to_string(), "\"Restart\"".to_string()]]
    });
}
