//! Behaviour of the log collector, run for real on the executor against files in temp dirs: the
//! module's events go through a real bounded queue to a collector that keeps them and their
//! cursors as the spool would.

use super::*;
use crate::pipeline::{event_queue, EventSender};
use crate::runtime::budget::{account_for, Budgeted, MemoryAccount};
use crate::runtime::{Module, ModuleContext, Shutdown};
use futures_lite::FutureExt;
use gatewatch_proto::{FieldValue, LogEvent, LogText, Payload};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod rotation;

/// Cursors as the spool keeps them: the last one accepted per key.
type Cursors = Rc<RefCell<HashMap<String, Vec<u8>>>>;

/// What a scenario sees of the running module.
struct Probe {
    events: Rc<RefCell<Vec<LogEvent>>>,
    stats: Rc<TailStats>,
    /// While set, the pipeline takes nothing: the module's sends wait on a full queue.
    paused: Rc<std::cell::Cell<bool>>,
}

impl Probe {
    /// Waits until `n` events arrived (panics after `timeout`); returns them all.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<LogEvent> {
        let deadline = Instant::now() + timeout;
        while self.events.borrow().len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} events; got {:?}",
                self.events.borrow()
            );
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        self.events.borrow().clone()
    }
}

async fn sleep(ms: u64) {
    async_io::Timer::after(Duration::from_millis(ms)).await;
}

/// Runs the collector with `config` while `scenario` runs; stops it when the scenario is done.
fn with_collector<F, Fut>(config: LogCollectorConfig, cursors: &Cursors, scenario: F)
where
    F: FnOnce(Probe) -> Fut,
    Fut: Future<Output = ()>,
{
    with_collector_as("logcollector-test", config, cursors, scenario)
}

/// The same, charging the module's allocations to the account `name`.
fn with_collector_as<F, Fut>(
    name: &'static str,
    config: LogCollectorConfig,
    cursors: &Cursors,
    scenario: F,
) where
    F: FnOnce(Probe) -> Fut,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = event_queue(64);
    let account = account_for(name).expect("a memory account");
    let memory = MemoryAccount::new(account, config.budget_bytes);
    let shutdown = Shutdown::new();
    let lookup = cursors.clone();
    let ctx = ModuleContext::new(
        EventSender::new("logcollector", tx),
        memory,
        std::env::temp_dir(),
        shutdown.clone(),
        Rc::new(move |key: &str| lookup.borrow().get(key).cloned()),
    );
    let mut module = LogCollector::new(config);
    let probe = Probe {
        events: Rc::default(),
        stats: module.stats(),
        paused: Rc::default(),
    };
    let events = probe.events.clone();
    let paused = probe.paused.clone();
    let store = cursors.clone();
    let consume = async move {
        while let Ok(submission) = rx.recv().await {
            while paused.get() {
                sleep(5).await;
            }
            if let Some(cursor) = submission.cursor {
                store.borrow_mut().insert(cursor.key, cursor.value);
            }
            match submission.body.payload {
                Payload::Log(event) => events.borrow_mut().push(event),
                Payload::LogBatch(batch) => events.borrow_mut().extend(batch.into_events()),
                _ => {}
            }
        }
        std::future::pending::<Result<(), crate::runtime::ModuleError>>().await
    };
    smol::block_on(async {
        let run = Budgeted::new(account, module.run(&ctx));
        let scenario = async {
            scenario(probe).await;
            shutdown.request();
            std::future::pending::<Result<(), crate::runtime::ModuleError>>().await
        };
        let result = run.or(scenario).or(consume).await;
        assert_eq!(result, Ok(()), "the module ran without error");
    });
}

fn source(location: &Path, format: Format) -> SourceConfig {
    SourceConfig {
        location: location.display().to_string(),
        format,
        alias: None,
        labels: BTreeMap::new(),
        only_future: false,
        multiline: None,
    }
}

fn config(sources: Vec<SourceConfig>) -> LogCollectorConfig {
    LogCollectorConfig {
        enabled: true,
        sources,
        ..LogCollectorConfig::default()
    }
}

fn text(event: &LogEvent) -> String {
    String::from_utf8_lossy(event.text.as_bytes()).into_owned()
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn audit_records_are_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(
        &log,
        b"type=SYSCALL msg=audit(1700000000.100:10): syscall=59 exe=\"/bin/ls\"\n\
          type=EXECVE msg=audit(1700000000.100:10): argc=1 a0=\"ls\"\n\
          type=PATH msg=audit(1700000000.100:10): item=0 name=\"/bin/ls\"\n\
          type=USER_LOGIN msg=audit(1700000001.200:11): res=success\n\
          type=SYSCALL msg=audit(1700000002.300:12): syscall=2\n\
          type=EOE msg=audit(1700000002.300:12): \n",
    );
    with_collector(
        config(vec![source(&log, Format::Audit)]),
        &Cursors::default(),
        |probe| async move {
            let events = probe.wait_for(3, WAIT).await;
            let groups: Vec<usize> = events.iter().map(|e| text(e).lines().count()).collect();
            assert_eq!(groups, [3, 1, 2], "records grouped by their event id");
            assert!(text(&events[0]).contains("type=EXECVE"));
            assert!(text(&events[2]).ends_with("type=EOE msg=audit(1700000002.300:12): "));
        },
    );
}

#[test]
fn multiline_regex_groups_stack_traces() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        b"2024-01-01 10:00:00 ERROR boom\n\
          java.lang.IllegalStateException: bad\n\
          \tat a.b.C.run(C.java:10)\n\
          \tat a.b.D.main(D.java:5)\n\
          2024-01-01 10:00:01 INFO fine\n",
    );
    let mut s = source(&log, Format::MultiLineRegex);
    s.multiline = Some(MultilineConfig {
        regex: r"^\d{4}-\d{2}-\d{2} ".into(),
        match_on: MatchOn::Start,
        timeout_ms: 300,
    });
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        // The last group is complete only when its timeout passes.
        let events = probe.wait_for(2, WAIT).await;
        assert_eq!(events.len(), 2);
        assert_eq!(
            text(&events[0]).lines().count(),
            4,
            "the trace stays with its line"
        );
        assert!(text(&events[0]).ends_with("\tat a.b.D.main(D.java:5)"));
        assert_eq!(text(&events[1]), "2024-01-01 10:00:01 INFO fine");
    });
}

#[test]
fn json_lines_get_labels() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.json");
    append(
        &log,
        b"{\"user\":{\"name\":\"ann\"},\"env\":\"spoofed\",\"n\":3}\nnot json\n",
    );
    let mut s = source(&log, Format::Json);
    s.labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    s.alias = Some("app".into());
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        let events = probe.wait_for(2, WAIT).await;
        let fields: HashMap<&str, &FieldValue> = events[0]
            .fields
            .iter()
            .map(|f| (f.name.as_str(), &f.value))
            .collect();
        assert_eq!(fields["user.name"], &FieldValue::Text("ann".into()));
        assert_eq!(fields["n"], &FieldValue::Number("3".into()));
        assert_eq!(
            fields["env"],
            &FieldValue::Text("prod".into()),
            "the label wins"
        );
        assert_eq!(events[0].source, "app");
        assert_eq!(text(&events[1]), "not json");
        assert_eq!(
            events[1].fields.len(),
            1,
            "only the label on a line that is not JSON"
        );
    });
}

#[test]
fn overlong_line_is_cut_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let mut content = vec![b'x'; 200_000];
    content.extend_from_slice(b"\nafter\n");
    append(&log, &content);
    with_collector(
        config(vec![source(&log, Format::Syslog)]),
        &Cursors::default(),
        |probe| async move {
            let events = probe.wait_for(2, WAIT).await;
            assert_eq!(events[0].text.as_bytes().len(), 64 * 1024);
            assert!(events[0].truncated);
            assert_eq!(text(&events[1]), "after");
            assert!(!events[1].truncated);
        },
    );
}

#[test]
fn invalid_utf8_is_preserved() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bin.log");
    append(&log, b"caf\xe9 \xff\xfe end\nplain\n");
    with_collector(
        config(vec![source(&log, Format::Syslog)]),
        &Cursors::default(),
        |probe| async move {
            let events = probe.wait_for(2, WAIT).await;
            assert_eq!(
                events[0].text,
                LogText::Bytes(b"caf\xe9 \xff\xfe end".to_vec()),
                "the exact bytes"
            );
            assert_eq!(events[1].text, LogText::Text("plain".into()));
        },
    );
}

#[test]
fn idle_tail_does_not_wake() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..50 {
        append(&dir.path().join(format!("f{i:02}.log")), b"old line\n");
    }
    let mut s = source(&dir.path().join("*.log"), Format::Syslog);
    s.only_future = true;
    with_collector(config(vec![s]), &Cursors::default(), |probe| async move {
        // One write shows the files are watched.
        sleep(200).await;
        append(&dir.path().join("f07.log"), b"new line\n");
        let events = probe.wait_for(1, WAIT).await;
        assert_eq!(text(&events[0]), "new line");
        sleep(200).await;
        let (reads, wakeups) = (probe.stats.reads.get(), probe.stats.wakeups.get());
        sleep(10_000).await;
        assert_eq!(
            probe.stats.reads.get(),
            reads,
            "no read in 10 s without writes"
        );
        assert_eq!(probe.stats.wakeups.get(), wakeups, "no wake-up either");
    });
}

#[test]
fn journald_cursor_resumes() {
    let Some(remote) = journal_remote() else {
        panic!("systemd-journal-remote is needed (package systemd-journal-remote; .ci/run installs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let journal_file = dir.path().join("test.journal");
    write_journal(&remote, &journal_file, 0..3);
    let cursors = Cursors::default();
    let s = source(&journal_file, Format::Journald);
    with_collector(config(vec![s.clone()]), &cursors, |probe| async move {
        let events = probe.wait_for(3, WAIT).await;
        let messages: Vec<String> = events.iter().map(text).collect();
        assert_eq!(messages, ["entry 0", "entry 1", "entry 2"]);
        assert!(events[0]
            .fields
            .iter()
            .any(|f| f.name == "SYSLOG_IDENTIFIER"));
        assert_eq!(events[0].source, "journald");
    });
    write_journal(&remote, &journal_file, 3..5);
    with_collector(config(vec![s]), &cursors, |probe| async move {
        probe.wait_for(2, WAIT).await;
        sleep(500).await;
        let messages: Vec<String> = probe.events.borrow().iter().map(text).collect();
        assert_eq!(
            messages,
            ["entry 3", "entry 4"],
            "resumed after the stored cursor"
        );
    });
}

fn journal_remote() -> Option<std::path::PathBuf> {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// Appends entries `range` to a journal file through systemd's own writer.
fn write_journal(remote: &Path, file: &Path, range: std::ops::Range<u32>) {
    let mut export = String::new();
    for i in range {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             SYSLOG_IDENTIFIER=test\nMESSAGE=entry {i}\n\n",
            1_700_000_000_000_000u64 + u64::from(i) * 1000,
            u64::from(i) + 1
        ));
    }
    let mut child = std::process::Command::new(remote)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "systemd-journal-remote wrote the journal"
    );
}

#[test]
fn tail_of_a_1_gib_file_stays_within_the_module_budget() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    // 1 GiB of 10,000-byte lines, written in 10 MB blocks.
    let mut block = Vec::with_capacity(10_000_000);
    for i in 0..1000 {
        let mut line = format!("line {i:06} ").into_bytes();
        line.resize(9_999, b'x');
        line.push(b'\n');
        block.extend_from_slice(&line);
    }
    let lines_total = {
        let mut file = std::fs::File::create(&log).unwrap();
        let mut written = 0u64;
        while written < 1 << 30 {
            file.write_all(&block).unwrap();
            written += block.len() as u64;
        }
        written / 10_000
    };
    drop(block);
    let budget = 1024 * 1024;
    let mut c = config(vec![source(&log, Format::Syslog)]);
    c.budget_bytes = budget;
    let name = "logcollector-1gib";
    with_collector_as(name, c, &Cursors::default(), |probe| async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        while probe.stats.entries.get() < lines_total {
            assert!(Instant::now() < deadline, "read the whole file in time");
            // The test keeps no copy of what it received.
            probe.events.borrow_mut().clear();
            sleep(5).await;
        }
    });
    let peak = crate::runtime::alloc::peak_bytes(account_for(name).unwrap());
    assert!(peak > 100_000, "the module did hold lines (peak {peak})");
    assert!(
        peak <= budget,
        "allocator peak {peak} within the budget {budget}"
    );
}
