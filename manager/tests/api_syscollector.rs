//! `GET /syscollector/{agent_id}/{kind}` over inventory an agent stand-in sent on a real session:
//! listing, paging, sorting, filters, select, and the answers for unknown and never-connected
//! agents and for a request without a token.

mod api_support;
mod common;

use api_support::{api_options, ApiManager};
use gatewatch_proto::inventory::{Change, InventoryEvent, OsInfo, Package, Port, Row};
use gatewatch_proto::{AgentMessage, EventBody, ManagerMessage, Payload};
use serde_json::{json, Value};

/// A manager, a token, and agent 001 whose inventory holds an OS row, 3 ports and 2 packages.
struct Fixture {
    m: ApiManager,
    token: String,
    agent: u32,
    _session: common::Client,
}

fn port(local_port: u16, protocol: &str, process: &str) -> Row {
    Row::Port(Port {
        protocol: protocol.into(),
        local_ip: "0.0.0.0".into(),
        local_port,
        state: "listening".into(),
        process: process.into(),
        pid: Some(100 + u32::from(local_port % 100)),
        ..Port::default()
    })
}

fn package(name: &str, version: &str) -> Row {
    Row::Package(Package {
        name: name.into(),
        version: version.into(),
        architecture: "aarch64".into(),
        format: "ipk".into(),
        ..Package::default()
    })
}

fn delta(scan_id: u64, key: &str, row: Row) -> Vec<u8> {
    let body = EventBody {
        time_ms: 1_700_000_000_000,
        module: "inventory".into(),
        payload: Payload::Inventory(Box::new(InventoryEvent::Delta {
            scan_id,
            table: row.table(),
            change: Change::Added,
            key: key.into(),
            checksum: format!("{key:0>40}"),
            row: Some(row),
        })),
    };
    let mut out = Vec::new();
    gatewatch_proto::event::encode_body(&body, &mut out).unwrap();
    out
}

fn fixture(dir: &std::path::Path) -> Fixture {
    let m = ApiManager::start(dir, api_options());
    let token = m.token();
    let (agent, key) = common::enroll_ok(&m.handle, "gw-inventory");
    let (mut session, acked) = common::session(&m.handle, agent, &key);
    let os = Row::Os(OsInfo {
        os_name: "Poky".into(),
        os_platform: "poky".into(),
        os_version: "5.0".into(),
        sysname: "Linux".into(),
        hostname: "gw-inventory".into(),
        architecture: "aarch64".into(),
        ..OsInfo::default()
    });
    let records = [
        delta(1, "os", os),
        delta(1, "tcp:22", port(22, "tcp", "dropbear")),
        delta(1, "tcp:1883", port(1883, "tcp", "mosquitto")),
        delta(1, "udp:5353", port(5353, "udp", "avahi")),
        delta(1, "busybox", package("busybox", "1.36.1")),
        delta(1, "openssl", package("openssl", "3.2.1")),
    ];
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let first_seq = acked + 1;
    session.send(&AgentMessage::Events {
        first_seq,
        records: refs,
    });
    match session.recv() {
        Some(ManagerMessage::Ack { up_to }) => assert_eq!(up_to, first_seq + 5),
        other => panic!("expected Ack, got {other:?}"),
    }
    Fixture {
        m,
        token,
        agent,
        _session: session,
    }
}

impl Fixture {
    fn get(&self, path: &str) -> (u16, Value) {
        let reply = self.m.with_token(&self.token, "GET", path, None);
        (reply.status, reply.json())
    }

    fn items(&self, kind: &str, query: &str) -> Value {
        let (status, body) = self.get(&format!("/syscollector/{:03}/{kind}{query}", self.agent));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["error"], 0, "{body}");
        body["data"].clone()
    }
}

fn ports_of(data: &Value) -> Vec<u64> {
    data["affected_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["local"]["port"].as_u64().unwrap())
        .collect()
}

#[test]
fn listing_returns_every_item_with_agent_and_scan() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let ports = f.items("ports", "");
    assert_eq!(ports["total_affected_items"], 3);
    assert_eq!(ports["failed_items"], json!([]));
    let ssh = ports["affected_items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["local"]["port"] == 22)
        .unwrap();
    assert_eq!(ssh["agent_id"], format!("{:03}", f.agent));
    assert_eq!(ssh["scan"]["id"], 1);
    assert_eq!(ssh["process"], "dropbear");
    let os = f.items("os", "");
    assert_eq!(os["affected_items"][0]["os"]["platform"], "poky");
    let (_, body) = f.get(&format!("/syscollector/{:03}/packages", f.agent));
    assert_eq!(
        body["message"],
        "All specified syscollector information was returned"
    );
    assert_eq!(f.items("netiface", "")["total_affected_items"], 0);
}

#[test]
fn paging_and_sorting_keep_the_total_of_all_matches() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let page = f.items("ports", "?sort=-local.port&offset=1&limit=1");
    assert_eq!(page["total_affected_items"], 3);
    assert_eq!(ports_of(&page), [1883]);
    let all = f.items("ports", "?sort=%2Blocal.port");
    assert_eq!(ports_of(&all), [22, 1883, 5353]);
}

#[test]
fn filters_search_and_select_narrow_the_items() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    assert_eq!(ports_of(&f.items("ports", "?protocol=udp")), [5353]);
    assert_eq!(ports_of(&f.items("ports", "?local.port=1883")), [1883]);
    assert_eq!(ports_of(&f.items("ports", "?search=MOSQ")), [1883]);
    assert_eq!(ports_of(&f.items("ports", "?search=-mosq")), [22, 5353]);
    let packages = f.items("packages", "?name=openssl&select=version");
    assert_eq!(
        packages["affected_items"],
        json!([{"version": "3.2.1", "agent_id": format!("{:03}", f.agent)}])
    );
}

#[test]
fn bad_parameters_are_400s_with_wazuh_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let base = format!("/syscollector/{:03}", f.agent);
    let (status, body) = f.get(&format!("{base}/ports?sort=nope"));
    assert_eq!((status, body["error"].clone()), (400, json!(1403)));
    let (status, body) = f.get(&format!("{base}/ports?select=nope"));
    assert_eq!((status, body["error"].clone()), (400, json!(1724)));
    let (status, _) = f.get(&format!("{base}/ports?bogus=1"));
    assert_eq!(status, 400);
    let (status, _) = f.get(&format!("{base}/os?limit=1"));
    assert_eq!(status, 400, "os takes only select, as in Wazuh");
    let (status, _) = f.get("/syscollector/1/ports");
    assert_eq!(status, 400, "agent ids have 3 digits");
    let (status, _) = f.get(&format!("{base}/nope"));
    assert_eq!(status, 404);
}

#[test]
fn unknown_agent_is_a_failed_item_1701() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let (status, body) = f.get("/syscollector/999/ports");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error"], 1);
    assert_eq!(body["data"]["total_failed_items"], 1);
    let failed = &body["data"]["failed_items"][0];
    assert_eq!(failed["error"]["code"], 1701);
    assert_eq!(failed["id"], json!(["999"]));
    assert_eq!(body["message"], "No syscollector information was returned");
}

#[test]
fn never_connected_agent_is_a_400_with_2007() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let added = f.m.with_token(
        &f.token,
        "POST",
        "/agents",
        Some(&json!({"name": "gw-quiet"})),
    );
    assert_eq!(added.status, 200, "{}", added.text());
    let id = added.json()["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = f.get(&format!("/syscollector/{id}/packages"));
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!(2007)),
        "{body}"
    );
}

#[test]
fn missing_token_is_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let reply = f.m.call(
        "GET",
        &format!("/syscollector/{:03}/os", f.agent),
        &[],
        None,
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["title"], "Unauthorized");
}
