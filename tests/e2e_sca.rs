//! SCA end to end: Wazuh's own policies, rule semantics on fixtures, change-only events, and
//! results reaching the manager and served by its REST API (`GET /sca/...`, through curl).

#[path = "common/api.rs"]
mod api;
mod module_support;

use api::Api;
use gatewatch::modules::sca::db::StateDb;
use gatewatch::modules::sca::eval::{Evaluator, Inspected};
use gatewatch::modules::sca::pattern::Engine;
use gatewatch::modules::sca::policy::{self, CheckStream};
use gatewatch::modules::sca::rule::Rule;
use gatewatch::modules::sca::scan::{run_check, Sink};
use gatewatch::modules::sca::{scan_round, ScaConfig, Tri};
use gatewatch::runtime::budget::account_for;
use gatewatch::runtime::{MemoryAccount, ModuleError};
use gatewatch_manager::{ApiOptions, ManagerOptions, Query};
use gatewatch_proto::sca::{CheckResult, ScaEvent, ScaSummary};
use module_support::{wait_for, Agent};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

fn shared_policy(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/wazuh-4.14.7/sca/"
    ))
    .join(name)
}

fn memory() -> MemoryAccount {
    MemoryAccount::new(account_for("test-sca-e2e").unwrap(), 64 * 1024 * 1024)
}

#[test]
fn wazuh_policies_load_unchanged() {
    for (name, checks) in [
        ("sca_distro_independent_linux.yml", 190),
        ("cis_debian12.yml", 207),
    ] {
        let path = shared_policy(name);
        let info = smol::block_on(policy::validate(&path, &[], || async {}))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.check_ids.len(), checks, "{name}");
        let mut eval = Evaluator::new(memory(), Duration::from_secs(30), true);
        let mut stream = CheckStream::open(&info).unwrap();
        let mut n = 0;
        while let Some(check) = stream.next_check().unwrap() {
            let (result, _) = smol::block_on(run_check(&mut eval, &info, &check));
            if let CheckResult::NotApplicable { reason } = &result {
                assert!(!reason.is_empty(), "{name} {}: a stated reason", check.id);
            }
            n += 1;
        }
        assert_eq!(n, checks, "{name}: every check yields a result");
    }
}

/// Evaluates one rule string (with `{dir}` replaced by the fixture directory).
fn eval_rule(
    eval: &mut Evaluator,
    dir: &std::path::Path,
    text: &str,
    engine: Engine,
) -> &'static str {
    let text = text.replace("{dir}", &dir.display().to_string());
    let vars = vec![(
        "$conf".to_string(),
        dir.join("sshd_config").display().to_string(),
    )];
    let rule = Rule::parse(&text, engine, &vars).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let mut seen = Inspected::default();
    match smol::block_on(eval.rule(&rule, &mut seen)) {
        Tri::Found => "found",
        Tri::NotFound => "not found",
        Tri::Invalid(_) => "invalid",
    }
}

#[test]
fn rule_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("sshd_config"),
        "# comment\nPermitRootLogin no\n\tMaxAuthTries 4\nClientAliveInterval 300\nBanner /etc/issue.net\nkernel.randomize_va_space = 2\n+legacy\nuser@host-1_x\n$FileCreateMode 0640\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("conf.d/nested")).unwrap();
    std::fs::write(d.join("conf.d/10-base.conf"), "Storage=volatile\n").unwrap();
    std::fs::write(
        d.join("conf.d/nested/20-extra.conf"),
        "Storage=persistent\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/README"), "Storage=none\n").unwrap();
    std::fs::write(d.join("unreadable"), "x\n").unwrap();
    let own_name = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim_end()
        .to_string();
    let table: &[(&str, &str)] = &[
        // f: existence, lists, not, and content.
        ("f:{dir}/sshd_config", "found"),
        ("f:{dir}/nope", "not found"),
        ("f:{dir}/nope,{dir}/sshd_config", "found"),
        ("f:{dir}/conf.d", "invalid"),
        ("not f:{dir}/nope", "found"),
        ("not f:{dir}/conf.d", "invalid"),
        ("f:$conf", "found"),
        ("f:{dir}/sshd_config -> PermitRootLogin no", "found"),
        ("f:{dir}/sshd_config -> permitrootlogin NO", "found"),
        ("f:{dir}/sshd_config -> PermitRootLogin", "not found"),
        ("f:{dir}/nope -> r:x", "invalid"),
        ("f:{dir}/sshd_config -> r:^PermitRootLogin\\s+no$", "found"),
        (
            "f:{dir}/sshd_config -> r:^PermitRootLogin && r:yes",
            "not found",
        ),
        (
            "f:{dir}/sshd_config -> r:^PermitRootLogin && !r:yes",
            "found",
        ),
        ("f:{dir}/sshd_config -> !r:^#", "found"),
        // n: numeric comparisons, each operator.
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare <= 300",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare < 300",
            "not found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare >= 300",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare > 299",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare = 300",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+) compare != 300",
            "not found",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+\\d+ compare > 1",
            "invalid",
        ),
        (
            "f:{dir}/sshd_config -> n:^ClientAliveInterval\\s+(\\d+)",
            "invalid",
        ),
        // The OS_Regex dialect.
        ("f:{dir}/sshd_config -> r:^\\s*MaxAuthTries", "not found"),
        ("f:{dir}/sshd_config -> r:^\\s*\\t*MaxAuthTries", "found"),
        (
            "f:{dir}/sshd_config -> r:^Banner\\s/etc/issue\\.net$",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> r:^Banner /etc/issue.nxt",
            "not found",
        ),
        (
            "f:{dir}/sshd_config -> r:randomize_va_space\\s*=\\s*2",
            "found",
        ),
        ("f:{dir}/sshd_config -> r:^\\w+$", "found"),
        ("f:{dir}/sshd_config -> r:^\\p\\w+", "found"),
        (
            "f:{dir}/sshd_config -> r:^\\$FileCreateMode\\s0640",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> r:^nothing$|^PermitRootLogin no$",
            "found",
        ),
        ("f:{dir}/sshd_config -> r:^\\+", "not found"),
        ("f:{dir}/sshd_config -> r:Root+Login", "not found"),
        ("f:{dir}/sshd_config -> r:(\\d+", "not found"),
        // d: existence, file-name patterns (OS_Regex with r:, OS_Match otherwise), recursion.
        ("d:{dir}/conf.d", "found"),
        ("d:{dir}/nope", "not found"),
        ("d:{dir}/conf.d -> r:\\.conf$", "found"),
        (
            "d:{dir}/conf.d -> r:\\.conf$ -> r:^Storage=persistent",
            "found",
        ),
        (
            "d:{dir}/conf.d -> r:\\.conf$ -> r:^Storage=none",
            "not found",
        ),
        ("d:{dir}/conf.d -> README -> r:^Storage=none", "found"),
        ("d:{dir}/conf.d -> ^20-|^30- -> r:persistent", "found"),
        ("d:{dir}/conf.d -> !conf -> r:none", "found"),
        ("d:{dir}/nope -> r:x", "invalid"),
        // p: the process list (literal = whole name, ignoring case).
        (&format!("p:{own_name}"), "found"),
        (&format!("p:{}", own_name.to_uppercase()), "found"),
        ("p:no-such-process-name", "not found"),
        ("p:r:^no-such", "not found"),
        // c: commands without a shell, output lines, no pattern, failures.
        ("c:echo hello world -> r:^hello", "found"),
        ("c:echo hello world -> hello world", "found"),
        ("c:echo hello | grep x -> r:\\| grep", "found"),
        ("c:sh -c \"echo one; echo two\" -> r:^two$", "found"),
        ("c:sh -c \"echo 5\" -> n:^(\\d+) compare < 6", "found"),
        ("c:/nonexistent/binary", "found"),
        ("c:/nonexistent/binary -> r:x", "invalid"),
        ("not c:/nonexistent/binary -> r:x", "invalid"),
        ("c:true -> r:anything", "not found"),
        ("not c:echo active -> r:^active$|^enabled$", "not found"),
    ];
    let mut eval = Evaluator::new(memory(), Duration::from_secs(10), true);
    let mut wrong = Vec::new();
    for (rule, expected) in table {
        let got = eval_rule(&mut eval, d, rule, Engine::OsRegex);
        if got != *expected {
            wrong.push(format!("{rule}: expected {expected}, got {got}"));
        }
    }
    // The same content tests under `regex_type: pcre2`.
    for (rule, expected) in [
        (
            "f:{dir}/sshd_config -> r:^\\s*MaxAuthTries\\s+[0-4]$",
            "found",
        ),
        (
            "f:{dir}/sshd_config -> r:^Banner /etc/issue.nxt",
            "not found",
        ),
        ("f:{dir}/sshd_config -> r:^\\+legacy", "found"),
    ] {
        let got = eval_rule(&mut eval, d, rule, Engine::Pcre2);
        if got != expected {
            wrong.push(format!("pcre2 {rule}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn command_rules_time_out_as_not_applicable() {
    let mut eval = Evaluator::new(memory(), Duration::from_millis(300), true);
    let rule = Rule::parse("c:sleep 5 -> r:x", Engine::OsRegex, &[]).unwrap();
    let started = std::time::Instant::now();
    let result = smol::block_on(eval.rule(&rule, &mut Inspected::default()));
    assert!(
        matches!(result, Tri::Invalid(ref why) if why.contains("Timeout")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Collects SCA events instead of queueing them.
#[derive(Default)]
struct Collected(Vec<ScaEvent>);

impl Sink for Collected {
    async fn send(&mut self, event: ScaEvent) -> Result<(), ModuleError> {
        self.0.push(event);
        Ok(())
    }
}

/// A small policy over files in `dir`.
fn write_policy(policies: &std::path::Path, dir: &std::path::Path) {
    std::fs::create_dir_all(policies).unwrap();
    let d = dir.display();
    let text = format!(
        r#"policy:
  id: "gw_test"
  file: "gw_test.yml"
  name: "Test policy"
  description: "Checks over fixture files."
  references: ["https://example.invalid/a", "https://example.invalid/b"]
requirements:
  title: "The fixture exists"
  description: "Only on the test machine."
  condition: all
  rules:
    - 'd:{d}'
variables:
  $cfg: {d}/app.conf
checks:
  - id: 91001
    title: "Telnet is disabled"
    description: "Telnet sends passwords in clear."
    compliance:
      - cis: ["2.2.1"]
    condition: none
    rules:
      - 'f:$cfg -> r:^telnet\s*=\s*on'
  - id: 91002
    title: "Debug is off"
    condition: all
    rules:
      - 'f:$cfg -> r:^debug\s*=\s*off'
  - id: 91003
    title: "A missing file"
    condition: all
    rules:
      - 'f:{d}/missing -> r:x'
"#
    );
    std::fs::write(policies.join("gw_test.yml"), text).unwrap();
}

fn checks_of(events: &[ScaEvent]) -> Vec<(u32, CheckResult)> {
    events
        .iter()
        .filter_map(|e| match e {
            ScaEvent::Check(c) => Some((c.id, c.result.clone())),
            _ => None,
        })
        .collect()
}

fn summary_of(events: &[ScaEvent]) -> ScaSummary {
    events
        .iter()
        .find_map(|e| match e {
            ScaEvent::Summary(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a summary")
}

#[test]
fn check_events_only_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("app.conf"), "telnet = off\ndebug = off\n").unwrap();
    let config = ScaConfig {
        policies_dir: dir.path().join("policies"),
        sync_every_scans: 0,
        ..ScaConfig::default()
    };
    write_policy(&config.policies_dir, &files);
    let mut db = StateDb::open(&dir.path().join("sca.db")).unwrap();
    let memory = memory();
    let round = |db: &mut StateDb| {
        let mut sink = Collected::default();
        smol::block_on(scan_round(&config, &memory, db, &mut sink)).unwrap();
        sink.0
    };

    let first = round(&mut db);
    assert_eq!(
        checks_of(&first).len(),
        3,
        "the first scan reports every check"
    );
    let s1 = summary_of(&first);
    assert_eq!((s1.passed, s1.failed, s1.invalid, s1.score), (2, 0, 1, 100));
    assert!(s1.full);
    assert!(matches!(first.last(), Some(ScaEvent::Policies { ids }) if ids == &["gw_test"]));

    let second = round(&mut db);
    assert!(
        checks_of(&second).is_empty(),
        "nothing changed, no check event"
    );
    let s2 = summary_of(&second);
    assert_eq!((s2.hash.as_str(), s2.full), (s1.hash.as_str(), false));

    std::fs::write(files.join("app.conf"), "telnet = on\ndebug = off\n").unwrap();
    let third = round(&mut db);
    assert_eq!(checks_of(&third), [(91001, CheckResult::Failed)]);
    assert_ne!(summary_of(&third).hash, s1.hash);
}

#[test]
fn sca_endpoints_return_results() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("app.conf"), "telnet = on\ndebug = off\n").unwrap();
    let policies = dir.path().join("policies");
    write_policy(&policies, &files);
    let iot = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/sca/gatewatch_iot_gateway.yml"
    ));
    std::fs::copy(&iot, policies.join("gatewatch_iot_gateway.yml")).unwrap();
    let mut opts = ManagerOptions::new(dir.path().join("manager"));
    opts.listen_addr = "127.0.0.1".parse().unwrap();
    opts.names = vec!["127.0.0.1".into()];
    opts.events_port = 0;
    opts.enroll_port = 0;
    opts.api = Some(ApiOptions {
        port: 0,
        ..ApiOptions::default()
    });
    let manager = gatewatch_manager::start(opts).expect("start the manager");
    let api = Api::login(&manager);
    let modules = format!(
        "[modules.sca]\nenabled = true\npolicies_dir = \"{}\"\n",
        policies.display()
    );
    let agent = Agent::start(&dir.path().join("agent"), &manager, &modules);
    let id = agent.wait_enrolled();
    let agent_path = format!("/sca/{id:03}");
    let listed = wait_for(
        Duration::from_secs(90),
        "SCA policies at the manager",
        || {
            let data = api.data(&agent_path);
            (data["total_affected_items"] == 2).then_some(data)
        },
    );
    let items = listed["affected_items"].as_array().unwrap();
    let test = items.iter().find(|p| p["policy_id"] == "gw_test").unwrap();
    assert_eq!(
        (
            test["pass"].as_u64(),
            test["fail"].as_u64(),
            test["invalid"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(test["score"], 50);
    assert_eq!(test["total_checks"], 3);
    assert_eq!(
        test["references"],
        "https://example.invalid/a,https://example.invalid/b"
    );
    assert!(test["hash_file"].as_str().is_some_and(|h| h.len() == 64));
    assert!(test["end_scan"].as_str().is_some_and(|t| t.ends_with('Z')));
    // The query function answers the same as the endpoint.
    assert_eq!(manager.sca_policies(id).unwrap().total, 2);

    let named = api.data(&format!("{agent_path}?name=Test%20policy&select=score"));
    assert_eq!(
        named["affected_items"],
        json!([{"policy_id": "gw_test", "score": 50}])
    );

    let checks = api.data(&format!("{agent_path}/checks/gw_test"));
    assert_eq!(checks["total_affected_items"], 3);
    let telnet = &checks["affected_items"][0];
    assert_eq!(
        (telnet["id"].as_u64(), telnet["result"].as_str()),
        (Some(91001), Some("failed"))
    );
    assert_eq!(telnet["compliance"][0]["key"], "cis");
    assert_eq!(telnet["rules"][0]["type"], "file");
    assert!(telnet["file"].as_str().unwrap().ends_with("app.conf"));
    let missing = &checks["affected_items"][2];
    assert_eq!(missing["result"], "not applicable");
    assert!(missing["reason"].as_str().unwrap().contains("missing"));
    let failed = api.data(&format!("{agent_path}/checks/gw_test?result=failed"));
    assert_eq!(failed["total_affected_items"], 1);
    let failed_query = Query {
        filters: vec![("result".into(), "failed".into())],
        ..Query::default()
    };
    assert_eq!(
        manager
            .sca_checks(id, "gw_test", &failed_query)
            .unwrap()
            .total,
        1
    );
    let paged = api.data(&format!("{agent_path}/checks/gw_test?sort=-id&limit=1"));
    assert_eq!(paged["total_affected_items"], 3);
    assert_eq!(paged["affected_items"][0]["id"], 91003);
    let in_sync = manager.sca_sync(id, "gw_test").unwrap().unwrap();
    assert!(in_sync.in_sync, "the manager's results hash as the agent's");

    let iot = items
        .iter()
        .find(|p| p["policy_id"] == "gatewatch_iot_gateway")
        .unwrap();
    let total = iot["total_checks"].as_u64().unwrap();
    assert!(total >= 60, "{total} checks");
    let iot_checks = api.data(&format!(
        "{agent_path}/checks/gatewatch_iot_gateway?limit=1000"
    ));
    assert_eq!(iot_checks["total_affected_items"], total);
    assert_eq!(
        iot_checks["affected_items"].as_array().unwrap().len() as u64,
        total
    );

    let (status, unknown) = api.get("/sca/999", true);
    assert_eq!((status, &unknown["error"]), (200, &json!(1)), "{unknown}");
    assert_eq!(unknown["data"]["failed_items"][0]["error"]["code"], 1701);
    assert!(matches!(
        manager.sca_policies(999),
        Err(gatewatch_manager::QueryError::UnknownAgent(999))
    ));
    let (status, _) = api.get(&agent_path, false);
    assert_eq!(status, 401, "a token is needed");
}

#[test]
fn shipped_iot_policy_has_60_checks_that_all_evaluate() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/sca/gatewatch_iot_gateway.yml"
    ));
    let info = smol::block_on(policy::validate(&path, &[], || async {})).unwrap();
    assert!(
        info.check_ids.len() >= 60,
        "{} checks",
        info.check_ids.len()
    );
    let mut eval = Evaluator::new(memory(), Duration::from_secs(30), true);
    let mut stream = CheckStream::open(&info).unwrap();
    let mut with_cis = 0;
    while let Some(check) = stream.next_check().unwrap() {
        assert!(
            !check.title.is_empty() && !check.remediation.is_empty(),
            "{}",
            check.id
        );
        with_cis += usize::from(check.compliance.iter().any(|(k, _)| k == "cis"));
        let (result, _) = smol::block_on(run_check(&mut eval, &info, &check));
        if std::env::var_os("SCA_SHOW").is_some() {
            eprintln!("{} {:?} {}", check.id, result, check.title);
        }
        if let CheckResult::NotApplicable { reason } = &result {
            assert!(!reason.contains("regex"), "{}: {reason}", check.id);
        }
    }
    assert!(with_cis >= 30, "{with_cis} checks cite CIS");
}
