//! Behaviour of the command module, with real processes, on one executor that drives the reaper.

use super::*;
use crate::pipeline::{event_queue, EventSender};
use crate::runtime::budget::{account_for, Budgeted, MemoryAccount};
use crate::runtime::{Module, ModuleContext, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::{CommandEvent, LogText, Payload};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn entry(name: &str, command: &[&str]) -> CommandEntry {
    CommandEntry {
        name: name.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        shell: false,
        interval_secs: 3600,
        run_on_start: true,
        timeout_secs: 10,
        ignore_output: false,
        max_output_bytes: 64 * 1024,
        sha256: None,
        output: OutputMode::Lines,
    }
}

/// Runs the module with `entries` until `count` events arrived (or 10 s passed); returns them.
fn events_of(entries: Vec<CommandEntry>, count: usize) -> Vec<CommandEvent> {
    let config = CommandConfig {
        enabled: true,
        entries,
        ..CommandConfig::default()
    };
    let (tx, rx) = event_queue(64);
    let account = account_for("command-test").expect("a memory account");
    let shutdown = Shutdown::new();
    let ctx = ModuleContext::new(
        EventSender::new("command", tx),
        MemoryAccount::new(account, config.budget_bytes),
        std::env::temp_dir(),
        shutdown.clone(),
        Rc::new(|_: &str| None),
    );
    let mut module = CommandModule::new(config, None);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let collect = {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while seen.borrow().len() < count && Instant::now() < deadline {
                let recv = async { rx.recv().await.ok() };
                let tick = async {
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    None
                };
                if let Some(submission) = recv.or(tick).await {
                    if let Payload::Command(event) = submission.body.payload {
                        seen.borrow_mut().push(event);
                    }
                }
            }
            shutdown.request();
            std::future::pending::<Result<(), crate::runtime::ModuleError>>().await
        }
    };
    let driver = async {
        crate::runtime::child::driver().await;
        Ok(())
    };
    smol::block_on(async {
        let run = Budgeted::new(account, module.run(&ctx));
        let result = run.or(collect).or(driver).await;
        assert_eq!(result, Ok(()));
    });
    let events = seen.borrow().clone();
    events
}

fn program(name: &str) -> String {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
        .expect("a coreutils program")
}

fn sha256_of(path: &str) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn command_hash_mismatch_refuses() {
    let echo = program("echo");
    let mut e = entry("echo", &[&echo, "should not run"]);
    e.sha256 = Some("0".repeat(64));
    let events = events_of(vec![e], 1);
    assert_eq!(events.len(), 1, "only the refusal: {events:?}");
    match &events[0] {
        CommandEvent::Refused { name, reason } => {
            assert_eq!(name, "echo");
            assert!(reason.contains("sha256"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_matching_hash_runs_and_each_line_is_an_event() {
    let printf = program("printf");
    let mut e = entry("lines", &[&printf, "one\\ntwo\\n"]);
    e.sha256 = Some(sha256_of(&printf));
    let events = events_of(vec![e], 3);
    let texts: Vec<&LogText> = events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Output { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [&LogText::Text("one".into()), &LogText::Text("two".into())]
    );
    assert!(matches!(
        events[2],
        CommandEvent::Finished {
            exit_code: Some(0),
            timed_out: false,
            ..
        }
    ));
}

#[test]
fn whole_output_is_one_event_and_the_cap_is_flagged() {
    let mut e = entry("whole", &["head -c 5000 /dev/zero | tr '\\0' a"]);
    e.shell = true;
    e.output = OutputMode::Whole;
    e.max_output_bytes = 1000;
    let events = events_of(vec![e], 2);
    match &events[0] {
        CommandEvent::Output {
            text, truncated, ..
        } => {
            assert_eq!(text.as_bytes().len(), 1000);
            assert!(truncated);
        }
        other => panic!("expected output, got {other:?}"),
    }
    assert!(matches!(
        events[1],
        CommandEvent::Finished {
            output_bytes: 5000,
            truncated: true,
            ..
        }
    ));
}

#[test]
fn a_timed_out_command_is_reported_as_such() {
    let mut e = entry("slow", &["sleep", "30"]);
    e.timeout_secs = 1;
    e.ignore_output = true;
    let events = events_of(vec![e], 1);
    assert!(
        matches!(
            events[0],
            CommandEvent::Finished {
                timed_out: true,
                signal: Some(9),
                ..
            }
        ),
        "{events:?}"
    );
}
