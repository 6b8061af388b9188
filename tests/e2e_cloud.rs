//! Cloud module against AWS as moto's server emulates it (S3 and CloudWatch Logs), started by
//! each test on a free loopback port (installed by `scripts/ci-cloud.sh`). The CloudTrail test
//! runs the real agent binary against the real manager; the others run the module on the
//! executor with the harness in `cloud_support`. Azure Storage is in `cloud_azure.rs`.

// The cloud module is in the default build, not in `gateway` (which the ARM runs test).
#![cfg(feature = "cloud")]

mod cloud_support;
mod module_support;

use cloud_support::{gzip, http, records, run_module, Cursors};
use gatewatch::modules::cloud::{CloudConfig, S3Kind, S3Source, Secret};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider};
use module_support::{free_port, start_manager, wait_for, Agent};
use std::collections::HashMap;
use std::time::Duration;

// The module's allocations are counted per account, as in the agent.
#[global_allocator]
static ALLOCATOR: gatewatch::runtime::alloc::CountingAllocator =
    gatewatch::runtime::alloc::CountingAllocator;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

/// Creates `bucket` in moto.
fn create_bucket(port: u16, bucket: &str) {
    let (status, body) = http(port, "PUT", &format!("/{bucket}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// Puts one object into moto.
fn put_object(port: u16, bucket: &str, key: &str, data: &[u8]) {
    let (status, body) = http(port, "PUT", &format!("/{bucket}/{key}"), &[], data);
    assert_eq!(status, 200, "{key}: {}", String::from_utf8_lossy(&body));
}

/// A CloudTrail log file (gzip JSON) of `n` records with ids `file-i`.
fn cloudtrail_file(file: usize, n: usize) -> Vec<u8> {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2026-11-28T06:{file:02}:{i:02}Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"{REGION}","eventID":"{file}-{i}","recipientAccountId":"{ACCOUNT}"}}"#
            )
        })
        .collect();
    gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
}

fn cloudtrail_key(day: u32, file: usize) -> String {
    format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/{day:02}/{ACCOUNT}_CloudTrail_{REGION}_20261128T06{file:02}Z_x.json.gz"
    )
}

fn s3_source(endpoint: &str, name: &str, kind: S3Kind, bucket: &str) -> S3Source {
    S3Source {
        name: name.into(),
        kind,
        bucket: bucket.into(),
        prefix: String::new(),
        accounts: Vec::new(),
        regions: Vec::new(),
        only_logs_after: Some("2026-11-28".into()),
        endpoint: Some(endpoint.into()),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: Secret("testing".into()),
        session_token: None,
    }
}

fn config() -> CloudConfig {
    CloudConfig {
        enabled: true,
        interval_secs: 1,
        ..CloudConfig::default()
    }
}

/// The `eventID`s of the CloudTrail records in manager events.
fn event_ids(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["Cloud"]["Record"]["record"].as_str())
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .filter_map(|r| r["eventID"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn cloudtrail_records_from_s3_once() {
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "trail");
    // A file of the day before `only_logs_after`: never read.
    put_object(
        moto.port,
        "trail",
        &cloudtrail_key(27, 0),
        &cloudtrail_file(0, 3),
    );
    for file in 1..=3 {
        put_object(
            moto.port,
            "trail",
            &cloudtrail_key(28, file),
            &cloudtrail_file(file, 3),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let manager = start_manager(&dir.path().join("manager"), free_port(), free_port());
    let feed = manager.subscribe();
    let modules = format!(
        "[modules.cloud]\nenabled = true\ninterval_secs = 1\n\n[[modules.cloud.s3]]\nname = \"trail\"\ntype = \"cloudtrail\"\nbucket = \"trail\"\nonly_logs_after = \"2026-11-28\"\nendpoint = \"{}\"\naccess_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
        moto.url()
    );
    let mut agent = Agent::start(&dir.path().join("agent"), &manager, &modules);
    agent.wait_enrolled();
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let collect = |seen: &mut Vec<serde_json::Value>| {
        while let Ok(event) = feed.try_recv() {
            if event.kind == "cloud.record" {
                seen.push(serde_json::from_str(&event.payload_json).unwrap());
            }
        }
    };
    wait_for(Duration::from_secs(60), "the first three files", || {
        collect(&mut seen);
        (event_ids(&seen).len() >= 9).then_some(())
    });
    // Stopped between files; three more arrive while it is down.
    agent.stop();
    for file in 4..=6 {
        put_object(
            moto.port,
            "trail",
            &cloudtrail_key(28, file),
            &cloudtrail_file(file, 3),
        );
    }
    agent.spawn();
    wait_for(Duration::from_secs(60), "all six files", || {
        collect(&mut seen);
        (event_ids(&seen).len() >= 18).then_some(())
    });
    // A few more polls: nothing is read again.
    std::thread::sleep(Duration::from_secs(3));
    collect(&mut seen);
    let ids = event_ids(&seen);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(ids.len(), 18, "each record once: {counts:?}");
    assert!(counts.values().all(|&n| n == 1));
    assert!(
        !counts.contains_key("0-0"),
        "the day before only_logs_after is not read"
    );
    let first = &seen[0]["Cloud"]["Record"];
    assert_eq!(first["provider"], "Aws");
    assert_eq!(first["service"], "cloudtrail");
    assert_eq!(first["account"], ACCOUNT);
    assert_eq!(first["region"], REGION);
    assert!(first["source"]
        .as_str()
        .unwrap()
        .starts_with("trail/AWSLogs/"));
    agent.stop();
    manager.shutdown();
}

#[test]
fn restart_inside_an_object_resumes_after_the_last_record() {
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "trail");
    for file in 1..=2 {
        put_object(
            moto.port,
            "trail",
            &cloudtrail_key(28, file),
            &cloudtrail_file(file, 5),
        );
    }
    let mut config = config();
    config
        .s3
        .push(s3_source(&moto.url(), "trail", S3Kind::Cloudtrail, "trail"));
    let cursors = Cursors::default();
    let timeout = Duration::from_secs(30);
    // Stopped after 7 records: inside the second file.
    let first = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 7);
    let second = run_module(config, &cursors, Duration::from_secs(3), |e| {
        records(e).len() + records(&first).len() >= 10
    });
    let mut times: Vec<String> = records(&first)
        .iter()
        .chain(records(&second).iter())
        .map(|r| r.time.clone().unwrap())
        .collect();
    let read = times.len();
    times.sort();
    times.dedup();
    assert_eq!((read, times.len()), (10, 10), "every record exactly once");
}

#[test]
fn guardduty_findings_from_s3() {
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "findings");
    let findings: Vec<String> = (0..4)
        .map(|i| {
            format!(
                r#"{{"schemaVersion":"2.0","accountId":"{ACCOUNT}","region":"{REGION}","id":"f{i}","type":"UnauthorizedAccess:EC2/SSHBruteForce","severity":5,"updatedAt":"2026-11-28T07:0{i}:00.000Z"}}"#
            )
        })
        .collect();
    let key = format!("AWSLogs/{ACCOUNT}/GuardDuty/{REGION}/2026/11/28/a1b2c3.jsonl.gz");
    put_object(
        moto.port,
        "findings",
        &key,
        &gzip(findings.join("\n").as_bytes()),
    );
    let mut config = config();
    config
        .s3
        .push(s3_source(&moto.url(), "gd", S3Kind::Guardduty, "findings"));
    let cursors = Cursors::default();
    let events = run_module(config.clone(), &cursors, Duration::from_secs(30), |e| {
        records(e).len() >= 4
    });
    let found = records(&events);
    assert_eq!(found.len(), 4);
    for (i, record) in found.iter().enumerate() {
        assert_eq!(record.provider, CloudProvider::Aws);
        assert_eq!(record.service, "guardduty");
        assert_eq!(
            (record.account.as_str(), record.region.as_str()),
            (ACCOUNT, REGION)
        );
        assert_eq!(
            record.time.as_deref(),
            Some(&*format!("2026-11-28T07:0{i}:00.000Z"))
        );
        let finding: serde_json::Value = serde_json::from_str(&record.record).unwrap();
        assert_eq!(finding["id"], format!("f{i}"));
    }
    let again = run_module(config, &cursors, Duration::from_secs(3), |_| false);
    assert!(again.is_empty(), "read once: {again:?}");
}

#[test]
fn oversized_object_is_reported_skipped_and_passed() {
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "logs");
    put_object(moto.port, "logs", "app/a.json", &vec![b' '; 5000]);
    put_object(moto.port, "logs", "app/b.json", br#"{"n":1}"#);
    let mut config = config();
    config.max_object_bytes = 4096;
    let mut source = s3_source(&moto.url(), "custom", S3Kind::Custom, "logs");
    source.prefix = "app/".into();
    source.only_logs_after = None;
    config.s3.push(source);
    let events = run_module(config, &Cursors::default(), Duration::from_secs(30), |e| {
        e.len() >= 2
    });
    assert!(
        matches!(&events[0], CloudEvent::Skipped { source, reason, .. }
            if source == "logs/app/a.json" && reason.contains("4096")),
        "{events:?}"
    );
    assert_eq!(records(&events)[0].record, r#"{"n":1}"#);
}

#[test]
fn large_cloudtrail_file_stays_within_the_module_budget() {
    use gatewatch::runtime::budget::account_for;
    use gatewatch::runtime::MemoryAccount;
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "trail");
    // About 5 MiB of JSON once decompressed: 25,000 records in one file.
    let n = 25_000;
    put_object(
        moto.port,
        "trail",
        &cloudtrail_key(28, 1),
        &cloudtrail_file(1, n),
    );
    let mut config = config();
    config.budget_bytes = 24 * 1024 * 1024;
    config
        .s3
        .push(s3_source(&moto.url(), "trail", S3Kind::Cloudtrail, "trail"));
    let events = cloud_support::run_module_as(
        "cloud-test-memory",
        config.clone(),
        &Cursors::default(),
        Duration::from_secs(120),
        |e| records(e).len() >= n,
    );
    assert_eq!(records(&events).len(), n);
    let account = MemoryAccount::new(
        account_for("cloud-test-memory").unwrap(),
        config.budget_bytes,
    );
    let plain = cloud_support::gunzip_len(&cloudtrail_file(1, n));
    eprintln!("peak {} bytes for a {plain}-byte file", account.peak());
    // One decompressed copy of the object, plus small change (the compressed body, TLS-free
    // HTTP buffers, the events on their way).
    assert!(
        account.peak() <= plain + 1024 * 1024 && account.peak() <= config.budget_bytes,
        "peak {} for a {plain}-byte object (budget {})",
        account.peak(),
        config.budget_bytes
    );
}

/// One CloudWatch Logs API call to moto (its server dispatches by the credential scope).
fn logs_call(port: u16, action: &str, body: serde_json::Value) -> serde_json::Value {
    let target = format!("Logs_20140328.{action}");
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0";
    let headers = [
        ("X-Amz-Target", target.as_str()),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Authorization", auth),
    ];
    let (status, answer) = http(port, "POST", "/", &headers, body.to_string().as_bytes());
    assert_eq!(
        status,
        200,
        "{action}: {}",
        String::from_utf8_lossy(&answer)
    );
    serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null)
}

fn put_log_events(port: u16, events: &[(u64, &str)]) {
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|(t, m)| serde_json::json!({"timestamp": t, "message": m}))
        .collect();
    logs_call(
        port,
        "PutLogEvents",
        serde_json::json!({"logGroupName": "/gw/vpn", "logStreamName": "s1", "logEvents": events}),
    );
}

#[test]
fn cloudwatch_logs_group_once() {
    use gatewatch::modules::cloud::CloudWatchLogsSource;
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    let port = moto.port;
    logs_call(
        port,
        "CreateLogGroup",
        serde_json::json!({"logGroupName": "/gw/vpn"}),
    );
    logs_call(
        port,
        "CreateLogStream",
        serde_json::json!({"logGroupName": "/gw/vpn", "logStreamName": "s1"}),
    );
    let now = gatewatch::modules::cloud::timefmt::now_secs() * 1000;
    let t = now - 60_000;
    put_log_events(
        port,
        &[
            (t, "login alice"),
            (t + 1000, "login bob"),
            (t + 1000, "login carol"),
        ],
    );
    let mut config = config();
    config.cloudwatch_logs.push(CloudWatchLogsSource {
        name: "vpn".into(),
        log_group: "/gw/vpn".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        endpoint: Some(moto.url()),
        only_logs_after: None,
        access_key_id: "testing".into(),
        secret_access_key: Secret("testing".into()),
        session_token: None,
    });
    let messages = |events: &[CloudEvent]| -> Vec<String> {
        let mut m: Vec<String> = records(events).iter().map(|r| r.record.clone()).collect();
        m.sort();
        m
    };
    let cursors = Cursors::default();
    let timeout = Duration::from_secs(30);
    let first = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 3);
    assert_eq!(
        messages(&first),
        ["login alice", "login bob", "login carol"]
    );
    let record = records(&first)[0];
    assert_eq!(
        (record.service.as_str(), record.account.as_str()),
        ("cloudwatch_logs", ACCOUNT)
    );
    assert_eq!(record.source, "/gw/vpn/s1");

    // One more at the last event's millisecond, one later: each read once.
    put_log_events(port, &[(t + 1000, "login dave"), (t + 2000, "login erin")]);
    let second = run_module(config, &cursors, Duration::from_secs(4), |_| false);
    assert_eq!(messages(&second), ["login dave", "login erin"]);
}

#[test]
fn vpc_flow_log_lines_become_records_named_by_the_header() {
    let Some(moto) = cloud_support::moto() else {
        return;
    };
    create_bucket(moto.port, "flows");
    let log = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
        2 123456789012 eni-1 10.0.0.5 10.0.1.9 44321 22 6 10 840 1795848000 1795848060 REJECT OK\n\
        2 123456789012 eni-1 10.0.0.5 10.0.1.9 44322 443 6 20 4000 1795848001 1795848061 ACCEPT OK\n";
    let key = format!("AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/28/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_20261128T0640Z_x.log.gz");
    put_object(moto.port, "flows", &key, &gzip(log.as_bytes()));
    let mut config = config();
    config
        .s3
        .push(s3_source(&moto.url(), "flows", S3Kind::Vpcflow, "flows"));
    let events = run_module(config, &Cursors::default(), Duration::from_secs(30), |e| {
        records(e).len() >= 2
    });
    let found = records(&events);
    assert_eq!(found.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&found[0].record).unwrap();
    assert_eq!(first["dstport"], "22");
    assert_eq!(first["action"], "REJECT");
    assert_eq!(found[0].service, "vpcflow");
    assert_eq!(found[0].time.as_deref(), Some("2026-11-28T06:40:00Z"));
}
