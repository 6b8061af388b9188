//! Garbage on the wire, on both sides: a bad frame is an error that closes the connection, and
//! the process that received it stays up and keeps serving.

mod common;
mod tls_support;

use base64ct::Encoding;
use common::{wait_for, Agent, Manager};
use gatewatch_proto::frame::{self, FrameDecoder};
use gatewatch_proto::AgentMessage;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the peer is sent after the TLS handshake.
fn garbage_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut random = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push(x as u8);
    }
    let mut truncated = 100u32.to_le_bytes().to_vec();
    truncated.extend_from_slice(&[1, 2, 3, 4, 5]);
    vec![
        ("oversized header", 0x7fff_ffffu32.to_le_bytes().to_vec()),
        ("random bytes", random),
        ("truncated frame", truncated),
        ("empty frame", vec![0, 0, 0, 0]),
    ]
}

/// A TLS client to the manager's event port, verifying it with the manager's CA.
fn manager_session(manager: &Manager) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let ca_pem = std::fs::read_to_string(manager.ca_pem()).unwrap();
    let der = pem_body(&ca_pem);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", manager.events_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64ct::Base64;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Base64::decode_vec(&body).unwrap()
}

/// Reads until the peer closes; true when it closed within 10 s.
fn closed_by_peer<S: Read>(stream: &mut S) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(10) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
    false
}

#[test]
fn garbage_frames_are_rejected() {
    let dir = tempfile::tempdir().unwrap();

    // Manager side: each kind of garbage closes that connection; the manager serves on.
    let manager = Manager::start(&dir.path().join("manager"), None);
    for (what, bytes) in garbage_cases() {
        let mut session = manager_session(&manager);
        // A valid Hello first, as an agent would, so the garbage hits the session decoder.
        let hello = frame::encode(
            &AgentMessage::Hello {
                version: 1,
                agent_id: 1,
            },
            1024,
        )
        .unwrap();
        session.write_all(&hello).unwrap();
        let _ = session.write_all(&bytes);
        let _ = session.flush();
        if what == "truncated frame" {
            session.conn.send_close_notify();
            let _ = session.flush();
        }
        assert!(
            closed_by_peer(&mut session),
            "manager closed the connection after {what}"
        );
    }
    let mut agent = Agent::configure(
        &dir.path().join("agent"),
        &manager,
        "[modules.generator]\nenabled = true\ncount = 20\nrate = 0\n",
    );
    agent.spawn();
    let id = agent.wait_enrolled();
    wait_for(Duration::from_secs(60), "events after the garbage", || {
        (manager.generator_numbers(id).len() == 20).then_some(())
    });
    agent.kill();

    // Agent side: a "manager" with the right certificate answers the Hello with garbage.
    let ca = tls_support::ca("garbage test CA");
    let server_leaf = tls_support::leaf(tls_support::server_params("127.0.0.1"), &ca.issuer);
    let cases = garbage_cases();
    let count = cases.len();
    let server = tls_support::serve(
        vec![server_leaf.cert_der.clone()],
        server_leaf.key_pkcs8.clone(),
        count,
        move |i, stream| {
            let mut decoder = FrameDecoder::new(frame::DEFAULT_MAX_FRAME);
            let hello = tls_support::recv_body(stream, &mut decoder).unwrap_or_default();
            let _ = stream.write_all(&cases[i].1);
            let _ = stream.flush();
            hello
        },
    );
    let state = dir.path().join("impostor-agent/state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("client.keys"),
        format!("001 garbage-agent any {}\n", "ab".repeat(32)),
    )
    .unwrap();
    let b64 = base64ct::Base64::encode_string(&ca.cert_der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let ca_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    std::fs::write(state.join("manager-ca.pem"), ca_pem).unwrap();
    let config = dir.path().join("impostor-agent/agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nname = \"garbage-agent\"\nstate_dir = \"{}\"\n[manager]\naddresses = [\"127.0.0.1\"]\nport = {}\n[enrollment]\nenabled = false\n",
            state.display(),
            server.port
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(common::agent_bin())
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Keep the agent's log, and echo it for a failing run.
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let agent_stderr = child.stderr.take().unwrap();
    let log_writer = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(agent_stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("{line}");
            log_writer.lock().unwrap().push_str(&line);
            log_writer.lock().unwrap().push('\n');
        }
    });
    for (what, _) in garbage_cases() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the agent exited ({status}) before {what}");
        }
        let outcome = server
            .outcomes
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let status = child.try_wait().unwrap();
                panic!(
                    "no connection from the agent before {what} (agent exit: {status:?}): {}",
                    log.lock().unwrap()
                )
            });
        assert!(outcome.handshake_completed, "the agent connected ({what})");
        assert!(
            !outcome.data.is_empty(),
            "the agent said Hello before the garbage ({what})"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the agent is still running after {what}"
        );
    }
    // Each garbage ended a connection and the agent came back for the next one.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the agent survived all the garbage"
    );
    common::sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "clean stop after SIGTERM: {status}");
    std::thread::sleep(Duration::from_millis(100));
    let stderr = log.lock().unwrap().clone();
    assert!(
        stderr.contains("frame") || stderr.contains("malformed"),
        "the agent said why: {stderr}"
    );
}
