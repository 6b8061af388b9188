//! The API's HTTP conventions over real TLS: 404/405, unknown parameters, `pretty`, `GET /`,
//! the served OpenAPI document, keep-alive, and oversized requests.

mod api_support;
mod common;

use std::io::{Read, Write};

use api_support::{api_options, parse_reply, tls_stream, ApiManager, Reply};
use serde_json::json;

fn manager(dir: &std::path::Path) -> (ApiManager, String) {
    let m = ApiManager::start(dir, api_options());
    let token = m.token();
    (m, token)
}

#[test]
fn unknown_path_is_404_and_wrong_method_405_with_allow() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    let missing = m.with_token(&token, "GET", "/nothing/here", None);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"title": "Not Found", "detail": "404: Not Found"})
    );
    let wrong = m.with_token(&token, "PATCH", "/agents", None);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.json()["title"], "Method Not Allowed");
    assert_eq!(wrong.header("allow"), Some("GET, POST, DELETE"));
}

#[test]
fn unknown_query_parameters_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    for (method, path) in [
        ("GET", "/?limit=1"),
        ("GET", "/agents?bogus=1"),
        ("PUT", "/agents/restart?status=active"),
        ("GET", "/agents/summary/status?x=1"),
    ] {
        let reply = m.with_token(&token, method, path, None);
        assert_eq!(reply.status, 400, "{path}");
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .contains("not in spec"),
            "{path}"
        );
    }
    for path in [
        "/?pretty=true&wait_for_complete=true",
        "/agents?wait_for_complete=false",
    ] {
        assert_eq!(
            m.with_token(&token, "GET", path, None).status,
            200,
            "{path}"
        );
    }
    assert_eq!(
        m.with_token(&token, "GET", "/?pretty=yes", None).status,
        400
    );
}

#[test]
fn pretty_indents_by_three_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    let text = m
        .with_token(&token, "GET", "/agents/summary/status?pretty=true", None)
        .text();
    assert!(
        text.starts_with("{\n   \"data\": {\n      \"connection\""),
        "{text}"
    );
    let compact = m
        .with_token(&token, "GET", "/agents/summary/status", None)
        .text();
    assert!(!compact.contains('\n'), "{compact}");
}

#[test]
fn root_describes_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    let reply = m.with_token(&token, "GET", "/", None);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let info = reply.json();
    assert_eq!(info["error"], 0);
    assert_eq!(info["data"]["title"], "Wazuh API REST");
    assert!(info["data"]["api_version"]
        .as_str()
        .unwrap()
        .starts_with("4."));
    assert!(info["data"]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn openapi_document_is_served_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manager(dir.path());
    let reply = m.call("GET", "/openapi.yaml", &[], None);
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("openapi: 3."));
    assert!(reply.text().contains("/agents/{agent_id}/restart:"));
}

/// Reads one response from a kept-alive stream.
fn read_one(stream: &mut impl Read) -> Reply {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = stream.read(&mut byte).expect("read the response");
        assert_eq!(
            n,
            1,
            "connection closed early: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.push(byte[0]);
        if raw.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&raw).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read the body");
    raw.extend_from_slice(&body);
    parse_reply(&raw)
}

#[test]
fn connection_is_kept_alive_between_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    let mut tls = tls_stream(m.addr(), &m.handle.ca_pem_path());
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    for _ in 0..3 {
        tls.write_all(request.as_bytes()).unwrap();
        tls.flush().unwrap();
        let reply = read_one(&mut tls);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn oversized_head_is_refused_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manager(dir.path());
    let mut tls = tls_stream(m.addr(), &m.handle.ca_pem_path());
    let request = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 431);
    assert_eq!(reply.header("connection"), Some("close"));
}

#[test]
fn oversized_body_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (m, token) = manager(dir.path());
    let mut tls = tls_stream(m.addr(), &m.handle.ca_pem_path());
    let request = format!(
        "POST /agents HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    assert_eq!(parse_reply(&raw).status, 413);
}
