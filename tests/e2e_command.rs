//! Commands pushed by the manager: refused unless the agent allows remote commands, run by the
//! command module when it does; and child processes as the command module runs them. A real
//! manager (in this process), a real agent process, real children.

mod common;

use common::{agent_bin, free_port, wait_for};
use gatewatch_manager::{start, AgentStatus, ManagerHandle, ManagerOptions};
use gatewatch_proto::Command;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

fn manager(dir: &Path) -> ManagerHandle {
    let mut opts = ManagerOptions::new(dir);
    opts.listen_addr = "127.0.0.1".parse().unwrap();
    opts.names = vec!["127.0.0.1".into()];
    opts.events_port = free_port();
    opts.enroll_port = free_port();
    start(opts).expect("start the manager")
}

/// Writes the agent's configuration and starts it (it enrolls itself); returns the process.
/// `manager_extra` goes into `[manager]`, `entries` after `[modules.command]`.
fn agent(dir: &Path, manager: &ManagerHandle, manager_extra: &str, entries: &str) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("agent.toml");
    let text = format!(
        "[agent]\nname = \"cmd-agent\"\nstate_dir = \"{}\"\n\n[manager]\naddresses = [\"127.0.0.1\"]\nport = {}\nkeepalive_secs = 2\n{extra}\n[enrollment]\nport = {}\nca = \"{}\"\n\n\
         [modules.command]\nenabled = true\n{entries}",
        dir.join("state").display(),
        manager.events_addr().port(),
        manager.enroll_addr().port(),
        manager.ca_pem_path().display(),
        extra = manager_extra,
    );
    std::fs::write(&config, text).unwrap();
    std::process::Command::new(agent_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the agent")
}

/// Sends a `Run` command once the agent is connected; returns the stored outcome JSON.
fn run_remotely(manager: &ManagerHandle, data_dir: &Path) -> String {
    let id = wait_for(Duration::from_secs(30), "the agent to connect", || {
        manager
            .agents()
            .ok()?
            .into_iter()
            .find(|a| a.status == AgentStatus::Active)
            .map(|a| a.id)
    });
    let command = Command::Run {
        name: "remote-echo".into(),
        argv: vec!["echo".into(), "pushed".into()],
        timeout_secs: 5,
    };
    let command_id = manager.send_command(id, command).expect("agent connected");
    let db = rusqlite::Connection::open_with_flags(
        data_dir.join("manager.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    wait_for(Duration::from_secs(30), "the command result", || {
        db.query_row(
            "SELECT outcome FROM command_results WHERE command_id = ?1",
            [command_id as i64],
            |r| r.get::<_, String>(0),
        )
        .ok()
    })
}

fn event_kinds(data_dir: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open_with_flags(
        data_dir.join("manager.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = db
        .prepare("SELECT kind, payload FROM events ORDER BY seq")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn remote_commands_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("manager");
    let manager = manager(&data);
    let mut child = agent(&dir.path().join("agent"), &manager, "", "");
    let outcome = run_remotely(&manager, &data);
    let _ = child.kill();
    let _ = child.wait();
    assert!(outcome.contains("Refused"), "{outcome}");
    assert!(
        outcome.contains("remote_commands"),
        "the reason names the setting: {outcome}"
    );
    let kinds = event_kinds(&data);
    assert!(
        !kinds.iter().any(|(k, _)| k.starts_with("command.")),
        "nothing ran: {kinds:?}"
    );
}

#[test]
fn remote_commands_run_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("manager");
    let manager = manager(&data);
    let mut child = agent(
        &dir.path().join("agent"),
        &manager,
        "remote_commands = true\n",
        "",
    );
    let outcome = run_remotely(&manager, &data);
    assert!(outcome.contains("Done"), "{outcome}");
    let output = wait_for(Duration::from_secs(30), "the command's output", || {
        event_kinds(&data)
            .into_iter()
            .find(|(k, _)| k == "command.output")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(output.1.contains("pushed"), "{}", output.1);
    assert!(output.1.contains("remote-echo"), "{}", output.1);
}

#[test]
fn commands_run_without_a_reaper_thread() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("manager");
    let manager = manager(&data);
    let entries =
        "[[modules.command.entries]]\nname = \"tick\"\ncommand = [\"true\"]\ninterval_secs = 1\n";
    let mut child = agent(&dir.path().join("agent"), &manager, "", entries);
    wait_for(Duration::from_secs(30), "two runs", || {
        (event_kinds(&data)
            .iter()
            .filter(|(k, _)| k == "command.finished")
            .count()
            >= 2)
            .then_some(())
    });
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .map(|t| {
            std::fs::read_to_string(t.unwrap().path().join("comm"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        names.iter().all(|n| n == "gatewatch" || n == "async-io"),
        "only the executor and async-io's reactor: {names:?}"
    );
}

// Child processes on the executor, as the command module runs them (here rather than beside
// `src/runtime/child.rs`: a thousand forks would race the library's own tests for their locks).

use gatewatch::runtime::child::{driver, run};
use std::ffi::OsString;
use std::time::Instant;

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn always(_: &mut Vec<u8>, _: usize) -> bool {
    true
}

/// Runs `f` on this thread with the reaper driven by the test, as the agent does.
fn on_executor<T>(f: impl std::future::Future<Output = T>) -> T {
    use futures_lite::FutureExt;
    smol::block_on(f.or(async {
        driver().await;
        unreachable!("the driver never ends")
    }))
}

/// Whether `pid` is a zombie child of this process.
fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // After the command name in parentheses: state, then parent pid.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("");
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state == "Z" && ppid == std::process::id()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn command_timeout_kills_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!("sleep 300 & echo $! > {}; sleep 300", pidfile.display());
    let out = on_executor(run(
        &argv(&["/bin/sh", "-c", &script]),
        Duration::from_millis(500),
        1024,
        &always,
    ))
    .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.signal, Some(9), "the child was killed");
    assert!(out.elapsed < Duration::from_secs(5));
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(grandchild) {
        assert!(
            Instant::now() < deadline,
            "the background process {grandchild} of the group was killed too"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn no_zombies_after_1000_runs() {
    let pids = on_executor(async {
        let mut pids = Vec::new();
        for _ in 0..1000 {
            let out = run(&argv(&["true"]), Duration::from_secs(10), 64, &always)
                .await
                .unwrap();
            assert_eq!(out.exit_code, Some(0));
            pids.push(out.pid);
        }
        pids
    });
    let zombies: Vec<u32> = pids.into_iter().filter(|&p| is_our_zombie(p)).collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
}
