//! `GET /agents` against a registry of 55 agents in all three states, checked field by field:
//! status, select, sort, limit/offset, q, search, agents_list and the field filters.

mod api_support;
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use api_support::{api_options, ApiManager};
use gatewatch_proto::{EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use serde_json::{json, Value};

/// What the test knows about one agent.
#[derive(Debug, Clone)]
struct Known {
    id: u32,
    name: String,
    register_ip: String,
    groups: Vec<String>,
    status: &'static str,
}

/// The registry: agents 010–059 added with `POST /agents/insert`, five more enrolled on 1515
/// into group `edge`; 010–019 connected, 020–024 connected then gone, the rest never seen.
struct Registry {
    m: ApiManager,
    token: String,
    agents: Vec<Known>,
    _sessions: Vec<common::Client>,
}

fn key_of(n: u32) -> String {
    format!("{n:0>64}")
}

fn registry(dir: &std::path::Path) -> Registry {
    let m = ApiManager::start(dir, api_options());
    let token = m.token();
    let mut agents = Vec::new();
    for n in 10..60u32 {
        let name = if n % 5 == 0 {
            format!("edge-{n}")
        } else {
            format!("gw-{n}")
        };
        let ip = if n % 4 == 0 {
            "any".to_string()
        } else {
            format!("10.0.{}.{}", n / 10, n)
        };
        let body = json!({"id": n.to_string(), "name": name, "ip": ip, "key": key_of(n)});
        let reply = m.with_token(&token, "POST", "/agents/insert", Some(&body));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["data"]["id"], format!("{n:03}"));
        agents.push(Known {
            id: n,
            name,
            register_ip: ip,
            groups: vec!["default".into()],
            status: "never_connected",
        });
    }
    for i in 0..5 {
        let mut c = common::connect(m.handle.enroll_addr(), &m.handle.ca_pem_path());
        c.send(&EnrollRequest {
            version: PROTOCOL_VERSION,
            name: format!("lab-{i}"),
            groups: vec!["edge".into(), "lab".into()],
            password: None,
        });
        let Some(EnrollResponse::Accepted { agent_id, .. }) = c.recv() else {
            panic!("enrollment refused")
        };
        agents.push(Known {
            id: agent_id,
            name: format!("lab-{i}"),
            register_ip: "127.0.0.1".into(),
            groups: vec!["edge".into(), "lab".into()],
            status: "never_connected",
        });
    }
    let mut sessions = Vec::new();
    for a in agents.iter_mut().filter(|a| (10..25).contains(&a.id)) {
        let (client, _) = common::session(&m.handle, a.id, &key_of(a.id));
        if a.id < 20 {
            a.status = "active";
            sessions.push(client);
        } else {
            a.status = "disconnected";
            drop(client);
        }
    }
    let r = Registry {
        m,
        token,
        agents,
        _sessions: sessions,
    };
    common::eventually("disconnected agents to be seen as such", || {
        r.ids("/agents?status=disconnected") == r.expect(|a| a.status == "disconnected")
    });
    r
}

impl Registry {
    fn get(&self, path: &str) -> Value {
        let reply = self.m.with_token(&self.token, "GET", path, None);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }

    fn error(&self, path: &str) -> Value {
        let reply = self.m.with_token(&self.token, "GET", path, None);
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        reply.json()
    }

    fn items(&self, path: &str) -> Vec<Value> {
        self.get(path)["data"]["affected_items"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn ids(&self, path: &str) -> Vec<String> {
        self.items(path)
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Ids of the registered agents (not 000) matching `f`, in id order.
    fn expect(&self, f: impl Fn(&Known) -> bool) -> Vec<String> {
        let mut ids: Vec<u32> = self.agents.iter().filter(|a| f(a)).map(|a| a.id).collect();
        ids.sort_unstable();
        ids.iter().map(|id| format!("{id:03}")).collect()
    }

    fn with_manager(&self, ids: Vec<String>) -> Vec<String> {
        let mut all = vec!["000".to_string()];
        all.extend(ids);
        all
    }
}

#[test]
fn agents_listing_filters() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    assert!(r.agents.len() >= 50);

    // Everything, field by field.
    let all = r.get("/agents?limit=100000");
    assert_eq!(all["error"], 0);
    assert_eq!(
        all["message"],
        "All selected agents information was returned"
    );
    assert_eq!(all["data"]["total_affected_items"], r.agents.len() + 1);
    let items = all["data"]["affected_items"].as_array().unwrap();
    assert_eq!(items[0]["id"], "000");
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["lastKeepAlive"], "9999-12-31T23:59:59+00:00");
    for item in &items[1..] {
        let id: u32 = item["id"].as_str().unwrap().parse().unwrap();
        let a = r.agents.iter().find(|a| a.id == id).expect("a known agent");
        assert_eq!(item["name"], a.name.as_str(), "{item}");
        assert_eq!(item["registerIP"], a.register_ip.as_str(), "{item}");
        assert_eq!(item["status"], a.status, "{item}");
        assert_eq!(item["status_code"], 0, "{item}");
        assert_eq!(item["group"], json!(a.groups), "{item}");
        let seen = a.status != "never_connected";
        let ip = if seen {
            "127.0.0.1"
        } else {
            a.register_ip.as_str()
        };
        assert_eq!(item["ip"], ip, "{item}");
        assert_eq!(
            item["node_name"],
            if seen { "node01" } else { "unknown" },
            "{item}"
        );
        assert_eq!(item.get("lastKeepAlive").is_some(), seen, "{item}");
        assert!(
            item.get("version").is_none(),
            "no keep-alive sent yet: {item}"
        );
        assert!(item.get("internal_key").is_none() && item.get("key").is_none());
        assert_eq!(
            item.get("disconnection_time").is_some(),
            a.status == "disconnected",
            "{item}"
        );
    }

    // status (several values are ORed).
    assert_eq!(
        r.ids("/agents?status=active"),
        r.with_manager(r.expect(|a| a.status == "active"))
    );
    assert_eq!(
        r.ids("/agents?status=never_connected,disconnected&limit=1000"),
        r.expect(|a| a.status != "active")
    );
    assert_eq!(
        r.ids("/agents?status=never_connected&status=disconnected&limit=1000"),
        r.expect(|a| a.status != "active")
    );

    // select: exactly the fields asked for, plus id.
    for item in r.items("/agents?select=name,status&limit=1000") {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["id", "name", "status"]), "{item}");
    }
    let os = r.items("/agents?select=os.platform&agents_list=000");
    assert!(os[0]["os"]["platform"].is_string() && os[0]["os"].as_object().unwrap().len() == 1);

    // sort, both ways, on text and on ids.
    let names: Vec<String> = r
        .items("/agents?sort=-name&select=name&limit=1000")
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);
    let mut by_id = r.with_manager(r.expect(|_| true));
    assert_eq!(r.ids("/agents?sort=%2Bid&limit=1000"), by_id);
    by_id.reverse();
    assert_eq!(r.ids("/agents?sort=-id&limit=1000"), by_id);

    // limit and offset page the sorted list; the total counts every match.
    let page = r.get("/agents?limit=7&offset=5");
    let expected: Vec<String> = r.with_manager(r.expect(|_| true))[5..12].to_vec();
    let got: Vec<&str> = page["data"]["affected_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(page["data"]["total_affected_items"], r.agents.len() + 1);
    assert!(r
        .items(&format!("/agents?offset={}", r.agents.len() + 1))
        .is_empty());

    // q: and, or, parentheses, comparisons, contains.
    assert_eq!(
        r.ids("/agents?q=id>40;status=never_connected&limit=1000"),
        r.expect(|a| a.id > 40 && a.status == "never_connected")
    );
    assert_eq!(
        r.ids("/agents?q=(status=active,status=disconnected);id<15"),
        r.with_manager(r.expect(|a| a.id < 15 && a.status != "never_connected"))
    );
    assert_eq!(
        r.ids("/agents?q=name~EDGE,group=edge&limit=1000"),
        r.expect(|a| a.name.contains("edge") || a.groups.iter().any(|g| g == "edge"))
    );
    assert_eq!(
        r.ids("/agents?q=registerIP=any;id!=020&limit=1000"),
        r.expect(|a| a.register_ip == "any" && a.id != 20)
    );
    // Agent 000's keep-alive is always "now or later", as in Wazuh.
    assert_eq!(
        r.ids("/agents?q=lastKeepAlive<1d&limit=1000"),
        r.with_manager(r.expect(|a| a.status != "never_connected"))
    );

    // search looks in every field; a leading '-' negates it.
    assert_eq!(
        r.ids("/agents?search=edge&limit=1000"),
        r.expect(|a| a.name.contains("edge") || a.groups.iter().any(|g| g == "edge"))
    );
    let not_edge = r.ids("/agents?search=-edge&limit=1000");
    assert!(not_edge.contains(&"000".to_string()));
    assert_eq!(
        not_edge[1..],
        r.expect(|a| !a.name.contains("edge") && !a.groups.iter().any(|g| g == "edge"))[..]
    );

    // Field filters.
    assert_eq!(
        r.ids("/agents?group=lab"),
        r.expect(|a| a.groups.iter().any(|g| g == "lab"))
    );
    assert_eq!(r.ids("/agents?name=gw-33"), vec!["033".to_string()]);
    assert_eq!(r.ids("/agents?ip=10.0.3.33"), vec!["033".to_string()]);
    assert_eq!(
        r.ids("/agents?registerIP=any&status=never_connected&limit=1000"),
        r.expect(|a| a.register_ip == "any" && a.status == "never_connected")
    );

    // agents_list: unknown ids are failed items.
    let partial = r.get("/agents?agents_list=011,010,999");
    assert_eq!(partial["error"], 2);
    assert_eq!(
        partial["message"],
        "Some agents information was not returned"
    );
    assert_eq!(r.ids("/agents?agents_list=011,010,999"), vec!["010", "011"]);
    assert_eq!(partial["data"]["failed_items"][0]["error"]["code"], 1701);
    assert_eq!(partial["data"]["failed_items"][0]["id"], json!(["999"]));

    // Errors, with their codes.
    assert_eq!(r.error("/agents?select=internal_key")["error"], 1724);
    assert_eq!(r.error("/agents?sort=-key")["error"], 1403);
    assert_eq!(r.error("/agents?q=key=1")["error"], 1408);
    assert_eq!(r.error("/agents?q=group<a")["error"], 1409);
    assert_eq!(r.error("/agents?q=name")["error"], 1407);
    assert_eq!(r.error("/agents?q=dateAdd<soon")["error"], 1412);
    for bad in [
        "limit=0",
        "limit=100001",
        "offset=-1",
        "status=sleeping",
        "agents_list=1",
        "older_than=7x",
    ] {
        let e = r.error(&format!("/agents?{bad}"));
        assert_eq!(e["title"], "Bad Request", "{bad}");
        assert!(
            e.get("error").is_none(),
            "schema errors have no code: {bad}"
        );
    }
}

#[test]
fn summary_counts_agents_by_status_without_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let count = |s: &str| r.agents.iter().filter(|a| a.status == s).count();
    let summary = r.get("/agents/summary/status");
    assert_eq!(summary["error"], 0);
    assert_eq!(
        summary["data"]["connection"],
        json!({
            "active": count("active"),
            "disconnected": count("disconnected"),
            "never_connected": count("never_connected"),
            "pending": 0,
            "total": r.agents.len(),
        })
    );
    assert_eq!(summary["data"]["configuration"]["total"], r.agents.len());
}

#[test]
fn older_than_keeps_agents_not_seen_for_that_long() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    std::thread::sleep(Duration::from_millis(2100));
    // The live sessions have not sent a keep-alive since they opened, 2 s ago.
    assert_eq!(
        r.ids("/agents?older_than=1s&limit=1000"),
        r.expect(|_| true)
    );
    assert!(r.ids("/agents?older_than=1d").is_empty());
}
