//! File integrity monitoring end to end: a real agent process watching a temporary tree, a real
//! manager keeping the agent's FIM state from the events, read back in Wazuh's syscheck shape.

mod common;

use common::{agent_bin, sigkill, wait_for};
use gatewatch_manager::{FimEntry, ManagerHandle, ManagerOptions, SyscheckQuery};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A manager in this process, on ephemeral loopback ports, with its REST API.
fn start_manager(dir: &Path) -> ManagerHandle {
    let mut options = ManagerOptions::new(dir);
    options.listen_addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    options.events_port = 0;
    options.enroll_port = 0;
    options.names = vec!["127.0.0.1".into()];
    options.api = Some(gatewatch_manager::ApiOptions {
        port: 0,
        ..Default::default()
    });
    gatewatch_manager::start(options).expect("start the manager")
}

/// Starts `gatewatch run` monitoring `watched` in realtime; returns the child.
fn start_agent(dir: &Path, manager: &ManagerHandle, watched: &Path) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("agent.toml");
    let text = format!(
        "[agent]\nname = \"fim-agent\"\nstate_dir = \"{state}\"\n\n\
         [manager]\naddresses = [\"127.0.0.1\"]\nport = {events}\nkeepalive_secs = 2\nreconnect_secs = 6\n\n\
         [enrollment]\nport = {enroll}\nca = \"{ca}\"\n\n\
         [buffer]\nevents_per_second = 0\n\n\
         [modules.fim]\nenabled = true\n\n\
         [[modules.fim.directories]]\npath = \"{watched}\"\nrealtime = true\n",
        state = dir.join("state").display(),
        events = manager.events_addr().port(),
        enroll = manager.enroll_addr().port(),
        ca = manager.ca_pem_path().display(),
        watched = watched.display(),
    );
    std::fs::write(&config, text).unwrap();
    Command::new(agent_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the agent")
}

fn files(manager: &ManagerHandle, query: &SyscheckQuery) -> Vec<FimEntry> {
    match manager.agents().ok().and_then(|a| a.first().map(|a| a.id)) {
        Some(id) => manager.syscheck(id, query).expect("syscheck"),
        None => Vec::new(),
    }
}

#[test]
fn syscheck_endpoint_lists_agent_files() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(watched.join("sub")).unwrap();
    for (name, content) in [("a.conf", "a"), ("b.conf", "bb"), ("sub/c.bin", "ccc")] {
        std::fs::write(watched.join(name), content).unwrap();
    }
    let manager = start_manager(&dir.path().join("manager"));
    let mut agent = start_agent(&dir.path().join("agent"), &manager, &watched);

    let all = SyscheckQuery::default();
    let listed = wait_for(
        Duration::from_secs(30),
        "the baseline at the manager",
        || {
            let listed = files(&manager, &all);
            (listed.len() == 3).then_some(listed)
        },
    );
    let a = listed
        .iter()
        .find(|f| f.file == watched.join("a.conf").to_string_lossy())
        .expect("a.conf listed");
    assert_eq!((a.file_type.as_str(), a.size, a.changes), ("file", 1, 1));
    assert_eq!(
        a.sha256,
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    );
    assert_eq!(a.md5.len(), 32);
    assert_eq!(a.uid, rustix::process::geteuid().as_raw().to_string());
    assert!(a.mtime.ends_with('Z') && a.date.ends_with('Z'), "{a:?}");

    // A realtime change and a deletion reach the manager's state.
    std::fs::write(watched.join("a.conf"), "changed").unwrap();
    std::fs::remove_file(watched.join("b.conf")).unwrap();
    let listed = wait_for(
        Duration::from_secs(15),
        "the changes at the manager",
        || {
            let listed = files(&manager, &all);
            let a = listed.iter().find(|f| f.file.ends_with("a.conf"))?;
            (listed.len() == 2 && a.changes == 2).then_some(listed)
        },
    );
    assert!(listed.iter().all(|f| !f.file.ends_with("b.conf")));

    // Filters, as the endpoint's query parameters.
    let by_search = files(
        &manager,
        &SyscheckQuery {
            search: Some("sub/".into()),
            ..Default::default()
        },
    );
    assert_eq!(by_search.len(), 1);
    let c_hash = by_search[0].sha1.clone();
    let by_hash = files(
        &manager,
        &SyscheckQuery {
            hash: Some(c_hash),
            ..Default::default()
        },
    );
    assert_eq!(by_hash[0].file, by_search[0].file);
    let sorted = files(
        &manager,
        &SyscheckQuery {
            sort: Some("-size".into()),
            limit: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(sorted.len(), 1);
    assert!(
        sorted[0].file.ends_with("a.conf"),
        "the largest file first: {sorted:?}"
    );

    // The same through `GET /syscheck/{agent_id}`, as an operator asks for it.
    let api = common::api::Api::login(&manager);
    let data = api.data("/syscheck/001?sort=-size");
    assert_eq!(data["total_affected_items"], 2, "{data}");
    let first = &data["affected_items"][0];
    assert!(
        first["file"].as_str().unwrap().ends_with("a.conf"),
        "{data}"
    );
    assert_eq!(first["type"], "file");
    assert_eq!(first["size"], 7);
    let by_hash = api.data(&format!(
        "/syscheck/001?hash={}&select=file",
        by_search[0].sha1
    ));
    assert_eq!(by_hash["total_affected_items"], 1, "{by_hash}");
    assert!(by_hash["affected_items"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("sub/c.bin"));
    let paged = api.data("/syscheck/001?limit=1&offset=1&sort=file");
    assert_eq!(
        (
            paged["total_affected_items"].as_u64(),
            paged["affected_items"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    let (status, unauthorized) = api.get("/syscheck/001", false);
    assert_eq!(status, 401, "{unauthorized}");
    sigkill(&mut agent);
}
