//! The running agent process: memory budgets as `gatewatch status` reports them, and the
//! one-thread design as `/proc/<pid>/task` shows it.

mod common;

use common::{enrolled_agent, wait_for, Agent, Manager};
use std::time::Duration;

/// (current, peak, budget) of a module from `gatewatch status`.
fn module_memory(agent: &Agent, module: &str) -> Option<(u64, u64, u64)> {
    let out = agent.command(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("module {module} ")))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))?
            .parse()
            .ok()
    };
    Some((field("current")?, field("peak")?, field("budget")?))
}

#[test]
fn module_stays_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let budget = 512 * 1024;
    // The generator tries to cache 8 MiB of bodies within a 512 KiB budget.
    let extra = format!(
        "[buffer]\nqueue_capacity = 64\nevents_per_second = 0\n\n[modules.generator]\nenabled = true\nrate = 2000\nbody_bytes = 256\nbudget_bytes = {budget}\nhoard_bytes = {}\n",
        8 * 1024 * 1024
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    agent.spawn();
    // Let it run long enough to hit its budget several times.
    wait_for(
        Duration::from_secs(60),
        "a shed or budget-pressure event",
        || {
            manager
                .events(id)
                .iter()
                .any(|e| e.1 == "agent.shed" || e.1 == "agent.budget_pressure")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    eprintln!(
        "{}",
        String::from_utf8_lossy(&agent.command(&["status"]).stdout)
    );
    let (current, peak, reported_budget) =
        wait_for(Duration::from_secs(10), "gatewatch status", || {
            module_memory(&agent, "generator")
        });
    assert_eq!(reported_budget, budget);
    assert!(
        peak > budget / 4,
        "the module did grow its cache (peak {peak})"
    );
    assert!(
        peak <= budget,
        "peak {peak} stayed within the budget {budget}"
    );
    assert!(current <= peak);
}

#[test]
fn agent_runs_on_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    // SCA runs its command rules as child processes: they must be reaped on the executor too
    // (no async-process reaper thread).
    let extra = format!(
        "[modules.generator]\nenabled = true\nrate = 200\n\n[modules.sca]\nenabled = true\npolicies_dir = \"{}/etc/sca\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    agent.spawn();
    wait_for(Duration::from_secs(30), "events flowing", || {
        (manager.generator_numbers(id).len() > 200).then_some(())
    });
    // Steady state: sample several times; only the executor thread and async-io's parked reactor
    // helper (documented in docs/adr/003) may exist.
    for _ in 0..10 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", agent.pid())).unwrap();
        let names: Vec<String> = tasks
            .map(|t| {
                std::fs::read_to_string(t.unwrap().path().join("comm"))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect();
        let others: Vec<&String> = names
            .iter()
            .filter(|n| *n != "gatewatch" && *n != "async-io")
            .collect();
        assert!(others.is_empty(), "unexpected threads: {names:?}");
        assert!(names.len() <= 2, "threads: {names:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM: modules stop, the spool is flushed, the link closes, within five seconds.
    let status = agent.stop(Duration::from_secs(5));
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}
