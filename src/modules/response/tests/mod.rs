//! Behaviour of the response module as the agent runs it: on one executor with the child-process
//! driver, real tools (nft in a network namespace pair, shell scripts), real state files.

use super::*;
use crate::pipeline::{event_queue, EventReceiver, EventSender};
use crate::runtime::budget::{account_for, Budgeted, MemoryAccount};
use crate::runtime::{Module, ModuleContext, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::event::{ResponseEvent, ResponseOutcome, ResponsePhase};
use gatewatch_proto::Payload;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

mod netns;

/// What a test body gets: the manager's side of the request queue and the module's events.
struct Ctl {
    requests: RequestSender,
    events: EventReceiver,
}

impl Ctl {
    /// Orders a response as the manager would.
    async fn order(&self, command: &str, arguments: &[&str], alert: &str) {
        let request = ResponseRequest {
            command: command.into(),
            arguments: arguments.iter().map(|a| a.to_string()).collect(),
            alert: alert.into(),
        };
        self.requests.send(request).await.expect("module running");
    }

    /// The next `response` event, within `secs` seconds.
    async fn next(&self, secs: u64) -> ResponseEvent {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Ok(s) => {
                        if let Payload::Response(e) = s.body.payload {
                            return *e;
                        }
                    }
                    Err(_) => panic!("event queue closed"),
                }
            }
        };
        let timeout = async {
            async_io::Timer::after(Duration::from_secs(secs)).await;
            panic!("no response event within {secs} s");
        };
        wait.or(timeout).await
    }
}

/// Runs the module with `config` (state in `state`) while `body` runs; returns what it returns.
fn drive<T, F: Future<Output = T>>(
    config: ResponseConfig,
    state: &Path,
    body: impl FnOnce(Ctl) -> F,
) -> T {
    let (tx, rx) = event_queue(64);
    let account = account_for("response-test").expect("a memory account");
    let ctx = ModuleContext::new(
        EventSender::new("response", tx),
        MemoryAccount::new(account, config.budget_bytes),
        state.to_path_buf(),
        Shutdown::new(),
        Rc::new(|_: &str| None),
    );
    let (requests, requests_rx) = request_channel();
    let mut module = ResponseModule::new(
        config,
        vec!["192.0.2.1".into()],
        1514,
        Some(requests_rx),
        None,
    );
    let ctl = Ctl {
        requests,
        events: rx,
    };
    smol::block_on(async {
        let run = async {
            let result = Budgeted::new(account, module.run(&ctx)).await;
            panic!("the module ended: {result:?}");
        };
        let driver = async {
            crate::runtime::child::driver().await;
            unreachable!("the child driver never ends")
        };
        body(ctl).or(run).or(driver).await
    })
}

fn enabled() -> ResponseConfig {
    ResponseConfig {
        enabled: true,
        ..ResponseConfig::default()
    }
}

#[test]
fn firewall_drop_blocks_then_unblocks() {
    blocks_then_unblocks(FirewallTool::Auto, "firewall-drop");
}

#[test]
fn iptables_fallback_blocks_then_unblocks() {
    blocks_then_unblocks(FirewallTool::Iptables, "firewall-drop");
}

#[test]
fn null_route_blocks_then_unblocks() {
    blocks_then_unblocks(FirewallTool::Auto, "null-route");
}

/// In a namespace pair: a connection works, fails after the response, works after its timeout.
fn blocks_then_unblocks(firewall: FirewallTool, response: &str) {
    let Some(pair) = netns::Pair::create() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let config = ResponseConfig {
        netns: Some(pair.gateway.clone()),
        firewall,
        ..enabled()
    };
    let listener = pair.listen();
    let attacker = pair.attacker_ip.to_string();
    assert!(
        pair.connects(listener),
        "the attacker reaches the gateway before the response"
    );
    drive(config, state.path(), |ctl| async move {
        // Wazuh's form: the timeout (3 s) as the command's suffix, the address in the alert.
        let alert = format!("{{\"data\":{{\"srcip\":\"{attacker}\"}}}}");
        ctl.order(&format!("{response}3"), &[], &alert).await;
        let added = ctl.next(20).await;
        assert_eq!(
            (added.phase, &added.outcome, added.timeout_secs),
            (ResponsePhase::Add, &ResponseOutcome::Done, 3),
            "{added:?}"
        );
        assert!(!pair.connects(listener), "blocked after the response");
        let removed = ctl.next(20).await;
        assert_eq!(
            (removed.phase, &removed.outcome, removed.id.as_str()),
            (
                ResponsePhase::Delete,
                &ResponseOutcome::Done,
                added.id.as_str()
            ),
            "{removed:?}"
        );
        assert!(pair.connects(listener), "reachable again after the timeout");
    });
}

#[test]
fn protected_addresses_are_refused_and_not_blocked() {
    let state = tempfile::tempdir().unwrap();
    let deny = state.path().join("hosts.deny");
    let config = ResponseConfig {
        hosts_deny: deny.clone(),
        ..enabled()
    };
    drive(config, state.path(), |ctl| async move {
        for ip in ["192.0.2.1", "127.0.0.1", "::1"] {
            ctl.order("host-deny", &[ip], "{}").await;
            let event = ctl.next(10).await;
            assert!(
                matches!(&event.outcome, ResponseOutcome::Refused { reason } if reason.contains("never blocked")),
                "{event:?}"
            );
        }
    });
    assert!(!deny.exists(), "nothing written");
}

#[test]
fn dry_run_reports_without_acting() {
    let state = tempfile::tempdir().unwrap();
    let deny = state.path().join("hosts.deny");
    let config = ResponseConfig {
        hosts_deny: deny.clone(),
        dry_run: true,
        default_timeout_secs: 1,
        ..enabled()
    };
    drive(config, state.path(), |ctl| async move {
        ctl.order("host-deny", &["203.0.113.4"], "{}").await;
        assert_eq!(ctl.next(10).await.outcome, ResponseOutcome::DryRun);
        let reversal = ctl.next(10).await;
        assert_eq!(
            (reversal.phase, reversal.outcome),
            (ResponsePhase::Delete, ResponseOutcome::DryRun)
        );
    });
    assert!(!deny.exists(), "nothing written in dry run");
}

#[test]
fn repeated_offenders_get_longer_timeouts() {
    let state = tempfile::tempdir().unwrap();
    let config = ResponseConfig {
        hosts_deny: state.path().join("hosts.deny"),
        default_timeout_secs: 1,
        repeated_offenders: vec![3],
        ..enabled()
    };
    drive(config, state.path(), |ctl| async move {
        let mut timeouts = Vec::new();
        for _ in 0..3 {
            ctl.order("host-deny", &["203.0.113.8"], "{}").await;
            timeouts.push(ctl.next(10).await.timeout_secs);
            assert_eq!(ctl.next(10).await.phase, ResponsePhase::Delete);
        }
        assert_eq!(timeouts, [1, 3, 3]);
    });
}

#[test]
fn an_action_in_effect_is_extended_not_repeated() {
    let state = tempfile::tempdir().unwrap();
    let deny = state.path().join("hosts.deny");
    let config = ResponseConfig {
        hosts_deny: deny.clone(),
        ..enabled()
    };
    drive(config, state.path(), |ctl| async move {
        ctl.order("host-deny", &["203.0.113.9"], "{}").await;
        let first = ctl.next(10).await;
        ctl.order("host-deny", &["203.0.113.9"], "{}").await;
        let second = ctl.next(10).await;
        assert_eq!(second.outcome, ResponseOutcome::Extended);
        assert_eq!(second.id, first.id, "the same action");
    });
    let text = std::fs::read_to_string(&deny).unwrap();
    assert_eq!(text, "ALL: 203.0.113.9\n");
}

/// A stateful script as Wazuh's are: records what it reads, asks `check_keys` on `add`.
const RECORDER: &str = r#"#!/bin/sh
log="$(dirname "$0")/stdin.log"
read -r line
printf '%s\n' "$line" >> "$log"
case "$line" in
*'"command":"add"'*)
  printf '%s\n' '{"version":1,"origin":{"name":"record.sh","module":"active-response"},"command":"check_keys","parameters":{"keys":["203.0.113.9"]}}'
  read -r reply
  printf '%s\n' "$reply" >> "$log"
  ;;
esac
"#;

#[test]
fn custom_script_gets_wazuh_json() {
    let state = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("record.sh");
    std::fs::write(&script, RECORDER).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = ResponseConfig {
        custom_dir: Some(bin.path().to_path_buf()),
        default_timeout_secs: 2,
        ..enabled()
    };
    let alert = r#"{"rule":{"id":"5712"},"data":{"srcip":"203.0.113.9"}}"#;
    drive(config, state.path(), |ctl| async move {
        ctl.order("!record.sh", &["-v"], alert).await;
        let added = ctl.next(20).await;
        assert_eq!(added.outcome, ResponseOutcome::Done, "{added:?}");
        ctl.order("!record.sh", &["-v"], alert).await;
        let again = ctl.next(20).await;
        assert_eq!(again.outcome, ResponseOutcome::Extended, "{again:?}");
        let deleted = ctl.next(20).await;
        assert_eq!(
            (deleted.phase, deleted.outcome, deleted.id),
            (ResponsePhase::Delete, ResponseOutcome::Done, added.id)
        );
    });
    let log = std::fs::read_to_string(bin.path().join("stdin.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let commands: Vec<String> = lines
        .iter()
        .map(|l| json::find_text(l, "command").unwrap_or_default())
        .collect();
    assert_eq!(
        commands,
        ["add", "continue", "add", "abort", "delete"],
        "{log}"
    );
    for line in &lines {
        assert!(
            line.starts_with(
                r#"{"version":1,"origin":{"name":"gatewatch","module":"wazuh-execd"}"#
            ),
            "{line}"
        );
        assert_eq!(
            json::find_text(line, "srcip").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(json::find_text(line, "id").as_deref(), Some("5712"));
        assert_eq!(
            json::find(line, "extra_args"),
            Some(json::Value::Strings(vec!["-v".into()]))
        );
        assert_eq!(
            json::find_text(line, "program").as_deref(),
            Some("active-response/bin/record.sh")
        );
    }
}

#[test]
fn custom_responses_are_refused_outside_the_allowed_directory() {
    let state = tempfile::tempdir().unwrap();
    drive(enabled(), state.path(), |ctl| async move {
        ctl.order("!record.sh", &[], "{}").await;
        let event = ctl.next(10).await;
        assert!(
            matches!(&event.outcome, ResponseOutcome::Refused { reason } if reason.contains("custom_dir")),
            "{event:?}"
        );
    });
}

#[test]
fn disable_account_runs_the_configured_tool_then_undoes_it() {
    let state = tempfile::tempdir().unwrap();
    let record = state.path().join("accounts.log");
    let tool = |verb: &str| {
        let line = format!("echo {verb} {{user}} >> {}", record.display());
        vec!["/bin/sh".to_string(), "-c".into(), line]
    };
    let config = ResponseConfig {
        lock_account: tool("lock"),
        unlock_account: tool("unlock"),
        default_timeout_secs: 1,
        ..enabled()
    };
    drive(config, state.path(), |ctl| async move {
        ctl.order("disable-account", &["mallory"], "{}").await;
        assert_eq!(ctl.next(10).await.outcome, ResponseOutcome::Done);
        assert_eq!(ctl.next(10).await.phase, ResponsePhase::Delete);
        ctl.order("disable-account", &["root"], "{}").await;
        let refused = ctl.next(10).await;
        assert!(
            matches!(refused.outcome, ResponseOutcome::Refused { .. }),
            "{refused:?}"
        );
    });
    let log = std::fs::read_to_string(&record).unwrap();
    assert_eq!(log, "lock mallory\nunlock mallory\n");
}

#[test]
fn a_quarantine_ordered_by_the_manager_is_restored_by_its_id() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("payload.bin");
    std::fs::write(&file, b"malware").unwrap();
    let path = file.to_string_lossy().into_owned();
    drive(enabled(), state.path(), |ctl| async move {
        ctl.order("quarantine", &[&path], "{}").await;
        let moved = ctl.next(10).await;
        assert_eq!(
            (moved.outcome, moved.timeout_secs),
            (ResponseOutcome::Done, 0)
        );
        assert!(!file.exists());
        ctl.order("restore", &[&moved.id], "{}").await;
        assert_eq!(ctl.next(10).await.outcome, ResponseOutcome::Done);
        assert_eq!(std::fs::read(&file).unwrap(), b"malware");
    });
}

#[test]
fn kill_of_the_agent_itself_is_refused_with_an_event() {
    let state = tempfile::tempdir().unwrap();
    let me = std::process::id().to_string();
    drive(enabled(), state.path(), |ctl| async move {
        for target in ["1", me.as_str()] {
            ctl.order("kill", &[target], "{}").await;
            let event = ctl.next(10).await;
            assert!(
                matches!(event.outcome, ResponseOutcome::Refused { .. }),
                "{event:?}"
            );
        }
    });
}
