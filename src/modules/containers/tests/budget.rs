//! The memory budget over 100,000 container events, and the bound of a single event.
//!
//! A real engine cannot be made to emit 100,000 events quickly (each is a container operation of
//! tens of milliseconds), nor a single event of megabytes. So these tests serve the Engine API's
//! wire format from a unix socket of their own: `GET /version`, a chunked `/events` stream shaped
//! exactly like Docker 20.10's (the lines below were captured from `dockerd`), and container and
//! exec inspections. The module under test is the real one, reading through its real client.

use super::{config_for, Harness};
use gatewatch_proto::containers::ContainerEvent;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

const VERSION: &str =
    r#"{"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux"}"#;

fn inspect(id: &str) -> String {
    format!(
        r#"{{"Id":"{id}","Name":"/c-{id}","Path":"sleep","Args":["60"],"State":{{"Status":"created"}},"HostConfig":{{"Binds":null,"NetworkMode":"none","Privileged":false,"CapAdd":null,"IpcMode":"private","PidMode":"","SecurityOpt":null,"Devices":[]}},"Mounts":[],"Config":{{"Hostname":"{id}","User":"","Env":["PATH=/bin"],"Cmd":["sleep","60"],"Image":"gwtest/busybox:1","Labels":{{}}}}}}"#
    )
}

const EXEC: &str = r#"{"ID":"e1","Running":true,"ProcessConfig":{"tty":false,"entrypoint":"id","arguments":["-u"],"privileged":false,"user":"1000"},"OpenStdin":false,"ContainerID":"c"}"#;

/// Events in the life of one container.
const LIFE: [&str; 20] = [
    "create",
    "start",
    "exec_start: id -u",
    "kill",
    "die",
    "start",
    "kill",
    "die",
    "start",
    "kill",
    "die",
    "start",
    "kill",
    "die",
    "start",
    "kill",
    "die",
    "start",
    "stop",
    "destroy",
];

/// The `n`-th event: containers that are created, run a command, restart a few times (which
/// brings their events out faster than inspections), and go.
fn event_line(n: u64) -> String {
    let life = LIFE.len() as u64;
    let id = format!("{:064x}", n / life);
    let action = LIFE[(n % life) as usize];
    let extra = if n % life == 2 {
        r#""execID":"e1","#
    } else {
        ""
    };
    format!(
        r#"{{"status":"{action}","id":"{id}","from":"gwtest/busybox:1","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{{extra}"image":"gwtest/busybox:1","name":"c-{n}"}}}},"scope":"local","time":1795848111,"timeNano":{}}}"#,
        1_795_848_111_000_000_000u64 + n
    ) + "\n"
}

/// Writes one HTTP response with a fixed body.
fn respond(conn: &mut UnixStream, status: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// Serves one connection: the request line decides the answer; `/events` gets `events`
/// (chunked, then held open until the test ends).
fn serve(conn: UnixStream, events: &(dyn Fn(&mut UnixStream) + Sync)) {
    let mut reader = BufReader::new(conn);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut conn = reader.into_inner();
    let path = request.split(' ').nth(1).unwrap_or_default();
    if path == "/version" {
        respond(&mut conn, "200 OK", VERSION);
    } else if path.contains("/events") {
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        events(&mut conn);
        std::thread::sleep(Duration::from_secs(600));
    } else if let Some(rest) = path.split("/containers/").nth(1) {
        let id = rest.trim_end_matches("/json");
        respond(&mut conn, "200 OK", &inspect(id));
    } else if path.contains("/exec/") {
        respond(&mut conn, "200 OK", EXEC);
    } else {
        respond(
            &mut conn,
            "404 Not Found",
            r#"{"message":"page not found"}"#,
        );
    }
}

/// Listens on `socket` in background threads, one per connection.
fn fake_engine(socket: &Path, events: fn(&mut UnixStream)) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, &events));
        }
    });
}

fn write_chunk(conn: &mut UnixStream, data: &[u8]) -> std::io::Result<()> {
    write!(conn, "{:x}\r\n", data.len())?;
    conn.write_all(data)?;
    conn.write_all(b"\r\n")
}

#[test]
fn hundred_thousand_container_events_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    fake_engine(&socket, |conn| {
        // Several events per chunk, and chunks that end mid-event, as a busy engine writes.
        let mut pending = Vec::new();
        for n in 0..100_000 {
            pending.extend_from_slice(event_line(n).as_bytes());
            if pending.len() > 3000 {
                if write_chunk(conn, &pending[..2900]).is_err() {
                    return;
                }
                pending.drain(..2900);
            }
        }
        let _ = write_chunk(conn, &pending);
    });
    let config = config_for(&socket);
    let budget = config.budget_bytes;
    let started = Instant::now();
    let mut module = Harness::start(config, "containers-budget", 1024);
    // The worst case: the spool stalls and the agent's queue (1024 events) fills with ours.
    std::thread::sleep(Duration::from_secs(2));
    let mut engine_events = 0u64;
    let mut alerts = 0u64;
    while engine_events < 100_000 {
        match module.next(Duration::from_secs(120)) {
            Some(ContainerEvent::Engine(_)) => engine_events += 1,
            Some(ContainerEvent::Alert(_)) => alerts += 1,
            Some(ContainerEvent::EngineConnected { .. }) => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("only {engine_events} events arrived"),
        }
        // This test reads 120,000 events: keep no log.
        module.log.clear();
    }
    let peak = crate::runtime::alloc::peak_bytes(module.account);
    eprintln!(
        "100,000 events ({alerts} alerts) in {:?}; module peak {peak} bytes of a {budget} budget",
        started.elapsed()
    );
    // Each container is inspected once (create), its exec once: the root-user finding each time.
    assert_eq!(alerts, 100_000 / LIFE.len() as u64);
    assert!(peak <= budget, "peak {peak} over the budget {budget}");
    module.stop().unwrap();
}

#[test]
fn a_huge_event_is_skipped_with_the_memory_of_a_small_one() {
    // 8 MiB in one event, sent in one chunk: more than a real engine can be made to send.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    fake_engine(&socket, |conn| {
        let mut huge =
            br#"{"Type":"container","Action":"create","Actor":{"ID":"x","Attributes":{"name":""#
                .to_vec();
        huge.resize(8 << 20, b'x');
        huge.extend_from_slice(b"\"}}}\n");
        huge.extend_from_slice(event_line(0).as_bytes());
        let _ = write_chunk(conn, &huge);
    });
    let config = config_for(&socket);
    let budget = config.budget_bytes;
    let mut module = Harness::start(config, "containers-huge", 64);
    let rejected = module.wait_for("a rejection", Duration::from_secs(60), |e| {
        matches!(e, ContainerEvent::EventRejected { .. })
    });
    assert!(matches!(
        rejected,
        ContainerEvent::EventRejected { bytes, rejected_total: 1, .. } if bytes > 8 << 20
    ));
    module.wait_for(
        "the event after it",
        Duration::from_secs(20),
        |e| matches!(e, ContainerEvent::Engine(e) if e.name.as_deref() == Some("c-0")),
    );
    let peak = crate::runtime::alloc::peak_bytes(module.account);
    assert!(peak < budget / 2, "peak {peak} bytes for an 8 MiB event");
    module.stop().unwrap();
}
