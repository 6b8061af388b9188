//! Harness of the cloud tests: the emulators (moto's server for S3, Azurite for Azure Storage)
//! started as child processes on free loopback ports, a blocking HTTP helper to put test data
//! into them, and the cloud module run on the executor with a consumer that keeps its events and
//! cursors as the spool would.
//!
//! The emulators are installed by `scripts/ci-cloud.sh`; their paths come from
//! `GATEWATCH_MOTO_SERVER` / `GATEWATCH_AZURITE` or the script's install locations. When one is
//! missing the test fails if `CI` is set, and is skipped (saying why) otherwise.
#![allow(dead_code)]

pub mod servers;

use futures_lite::FutureExt;
use gatewatch::modules::cloud::{Cloud, CloudConfig};
use gatewatch::pipeline::{event_queue, EventSender};
use gatewatch::runtime::budget::{account_for, Budgeted};
use gatewatch::runtime::{MemoryAccount, Module, ModuleContext, ModuleError, Shutdown};
use gatewatch_proto::cloud::{CloudEvent, CloudRecord};
use gatewatch_proto::Payload;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Finds an emulator: `var`, else `default`. `None` (after saying why) when it is missing and
/// `CI` is not set; a failure when `CI` is set.
pub fn emulator(var: &str, default: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{what} not found at {} (set {var}, or run scripts/ci-cloud.sh to install it)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipping: {why}");
    None
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// An emulator process, killed when dropped.
pub struct Emulator {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Emulator {
    fn spawn(program: PathBuf, args: &[String], port: u16, dir: tempfile::TempDir) -> Emulator {
        let child = Command::new(&program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let emulator = Emulator {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {port} within 60 s",
                program.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's server (AWS), if installed.
pub fn moto() -> Option<Emulator> {
    let program = emulator(
        "GATEWATCH_MOTO_SERVER",
        "/var/cache/gatewatch/cloud-venv/bin/moto_server",
        "moto_server (PyPI moto[server])",
    )?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("moto dir");
    let args = [
        "-H".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    Some(Emulator::spawn(program, &args, port, dir))
}

/// Azurite's blob service, in memory, if installed.
pub fn azurite() -> Option<Emulator> {
    let program = emulator(
        "GATEWATCH_AZURITE",
        "/var/cache/gatewatch/azurite/node_modules/.bin/azurite-blob",
        "azurite-blob (npm azurite)",
    )?;
    let port = free_port();
    let dir = tempfile::tempdir().expect("azurite dir");
    let args = [
        "--blobHost".to_string(),
        "127.0.0.1".into(),
        "--blobPort".into(),
        port.to_string(),
        "--inMemoryPersistence".into(),
        "--skipApiVersionCheck".into(),
        "--silent".into(),
    ];
    Some(Emulator::spawn(program, &args, port, dir))
}

/// One blocking HTTP/1.1 exchange on loopback; returns the status and the body.
pub fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the emulator");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let status = std::str::from_utf8(&raw[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, raw[end + 4..].to_vec())
}

/// A gzip member of `data` (miniz_oxide's deflate in gzip framing).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend(crc32fast::hash(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// The decompressed size a gzip member states in its trailer.
pub fn gunzip_len(data: &[u8]) -> usize {
    let tail = &data[data.len() - 4..];
    u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize
}

/// Cursors as the spool keeps them: the last one accepted per key.
pub type Cursors = Rc<RefCell<HashMap<String, Vec<u8>>>>;

/// Runs the cloud module with `config` until `enough` says the events so far suffice (or
/// `timeout` passes); returns every event it sent. Cursors persist in `cursors` across runs.
pub fn run_module(
    config: CloudConfig,
    cursors: &Cursors,
    timeout: Duration,
    enough: impl Fn(&[CloudEvent]) -> bool,
) -> Vec<CloudEvent> {
    run_module_as("cloud-test", config, cursors, timeout, enough)
}

/// [`run_module`] with the module's allocations charged to the account `name` (a test that
/// measures them uses its own, as tests run in parallel).
pub fn run_module_as(
    name: &'static str,
    config: CloudConfig,
    cursors: &Cursors,
    timeout: Duration,
    enough: impl Fn(&[CloudEvent]) -> bool,
) -> Vec<CloudEvent> {
    let (tx, rx) = event_queue(16);
    let account = account_for(name).expect("a memory account");
    let memory = MemoryAccount::new(account, config.budget_bytes);
    let shutdown = Shutdown::new();
    let lookup = cursors.clone();
    let state = tempfile::tempdir().expect("state dir");
    let ctx = ModuleContext::new(
        EventSender::new("cloud", tx),
        memory,
        state.path().to_path_buf(),
        shutdown.clone(),
        Rc::new(move |key: &str| lookup.borrow().get(key).cloned()),
    );
    let mut module = Cloud::new(config);
    let events: Rc<RefCell<Vec<CloudEvent>>> = Rc::default();
    let store = cursors.clone();
    let kept = events.clone();
    let accept = move |submission: gatewatch::pipeline::Submission| {
        if let Some(cursor) = submission.cursor {
            store.borrow_mut().insert(cursor.key, cursor.value);
        }
        if let Payload::Cloud(event) = submission.body.payload {
            // A copy made here is charged to the test, not to the module: the module's own
            // allocation is freed as the spool would free it.
            kept.borrow_mut().push(event.clone());
        }
    };
    smol::block_on(async {
        let run = Budgeted::new(account, module.run(&ctx));
        let watch = async {
            let deadline = Instant::now() + timeout;
            while !enough(&events.borrow()) && Instant::now() < deadline {
                async_io::Timer::after(Duration::from_millis(20)).await;
            }
            shutdown.request();
            std::future::pending::<Result<(), ModuleError>>().await
        };
        let consume = async {
            while let Ok(submission) = rx.recv().await {
                accept(submission);
            }
            std::future::pending::<Result<(), ModuleError>>().await
        };
        let result = run.or(watch).or(consume).await;
        assert_eq!(result, Ok(()), "the module ran without error");
        // What the module queued before it stopped reaches the spool too.
        while let Ok(submission) = rx.try_recv() {
            accept(submission);
        }
    });
    let out = events.borrow().clone();
    out
}

/// The records among `events`.
pub fn records(events: &[CloudEvent]) -> Vec<&CloudRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            CloudEvent::Record(r) => Some(r.as_ref()),
            CloudEvent::Skipped { .. } => None,
        })
        .collect()
}
