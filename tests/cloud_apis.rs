//! Cloud module against the APIs that have no runnable emulator: GCP Pub/Sub, Azure Log
//! Analytics and Microsoft Graph. Each test serves the API from an in-repo HTTP server on a
//! loopback socket (`cloud_support::servers`), written from the provider's published reference:
//! - Pub/Sub REST v1 `projects.subscriptions.pull` / `.acknowledge`, and Google's OAuth 2.0
//!   JWT-bearer token endpoint (RFC 7523, RS256 assertion from a service-account key);
//! - Log Analytics query API `POST /v1/workspaces/{id}/query` (`tables` of `columns`/`rows`),
//!   and the Microsoft identity platform's client-credentials grant (`/{tenant}/oauth2/v2.0/token`);
//! - Graph v1.0 `auditLogs/signIns` with `$filter`, `$orderby` and `@odata.nextLink` paging.
//!
//! The servers check what the real services check that matters here (the JWT's signature and
//! claims, the bearer token, the grant's fields) and keep their own state (acknowledged
//! messages, stored rows), so the tests see what the module really asked for.

// The cloud module is in the default build, not in `gateway` (which the ARM runs test).
#![cfg(feature = "cloud")]

mod cloud_support;

use cloud_support::servers::{Answer, Received, Server};
use cloud_support::{records, run_module, Cursors};
use gatewatch::modules::cloud::{
    AadApp, CloudConfig, GraphKind, GraphSource, LogAnalyticsSource, PubSubSource, Secret,
};
use gatewatch_proto::cloud::CloudProvider;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn config() -> CloudConfig {
    CloudConfig {
        enabled: true,
        interval_secs: 1,
        ..CloudConfig::default()
    }
}

fn key_file() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloud/gcp-service-account.json"
    ))
}

/// Checks a JWT-bearer grant: the RS256 signature against the key file's public key, and the
/// claims Google requires.
fn check_assertion(request: &Received, audience: &str) -> Result<(), String> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let form = request.form();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err(format!("grant_type: {form:?}"));
    }
    let assertion = form.get("assertion").ok_or("no assertion")?;
    let (signed, signature) = assertion.rsplit_once('.').ok_or("not a JWT")?;
    let signature = Base64UrlUnpadded::decode_vec(signature).map_err(|_| "signature encoding")?;
    let key: Value = serde_json::from_slice(&std::fs::read(key_file()).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let der = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64ct::Base64::decode_vec(&der).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    use ring::signature::KeyPair;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    )
    .verify(signed.as_bytes(), &signature)
    .map_err(|_| "bad RS256 signature")?;
    let claims = signed.split('.').nth(1).ok_or("no claims")?;
    let claims: Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).map_err(|_| "claims")?)
            .map_err(|_| "claims JSON")?;
    let ok = claims["iss"] == key["client_email"]
        && claims["aud"] == audience
        && claims["scope"] == "https://www.googleapis.com/auth/pubsub"
        && claims["exp"].as_u64() > claims["iat"].as_u64();
    ok.then_some(()).ok_or(format!("claims: {claims}"))
}

/// A Pub/Sub message held by the test server.
struct Message {
    id: String,
    data: String,
    leased: bool,
    acked: bool,
}

#[test]
fn pubsub_pull_and_ack() {
    use base64ct::{Base64, Encoding};
    let messages: Arc<Mutex<Vec<Message>>> = Arc::new(Mutex::new(
        (0..5)
            .map(|i| Message {
                id: format!("m{i}"),
                data: format!(r#"{{"finding":{{"name":"f{i}","category":"OPEN_FIREWALL"}}}}"#),
                leased: false,
                acked: false,
            })
            .collect(),
    ));
    let audience: Arc<Mutex<String>> = Arc::default();
    let state = messages.clone();
    let aud = audience.clone();
    let server = Server::start(move |r: &Received| -> Answer {
        if r.path == "/token" {
            return match check_assertion(r, &aud.lock().unwrap()) {
                Ok(()) => (
                    200,
                    json!({"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"}),
                ),
                Err(e) => (
                    400,
                    json!({"error": "invalid_grant", "error_description": e}),
                ),
            };
        }
        if r.bearer() != Some("ya29.test") {
            return (
                401,
                json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}),
            );
        }
        let mut messages = state.lock().unwrap();
        match r.path.as_str() {
            "/v1/projects/gatewatch-test/subscriptions/scc:pull" => {
                let max = r.json()["maxMessages"].as_u64().unwrap_or(0) as usize;
                let received: Vec<Value> = messages
                    .iter_mut()
                    .filter(|m| !m.acked && !m.leased)
                    .take(max)
                    .map(|m| {
                        m.leased = true;
                        json!({"ackId": format!("ack-{}", m.id), "message": {
                            "data": Base64::encode_string(m.data.as_bytes()),
                            "messageId": m.id,
                            "publishTime": "2026-11-28T07:00:00.123Z",
                            "attributes": {}}})
                    })
                    .collect();
                if received.is_empty() {
                    (200, json!({}))
                } else {
                    (200, json!({ "receivedMessages": received }))
                }
            }
            "/v1/projects/gatewatch-test/subscriptions/scc:acknowledge" => {
                for id in r.json()["ackIds"].as_array().unwrap() {
                    let id = id.as_str().unwrap().trim_start_matches("ack-");
                    if let Some(m) = messages.iter_mut().find(|m| m.id == id) {
                        m.acked = true;
                    }
                }
                (200, json!({}))
            }
            _ => (404, json!({"error": {"code": 404}})),
        }
    });
    *audience.lock().unwrap() = format!("{}/token", server.url());
    let mut config = config();
    config.pubsub.push(PubSubSource {
        name: "scc".into(),
        project: "gatewatch-test".into(),
        subscription: "scc".into(),
        credentials_file: key_file(),
        endpoint: server.url(),
        token_uri: Some(format!("{}/token", server.url())),
        max_messages: 2,
    });
    let acked = |m: &Arc<Mutex<Vec<Message>>>| m.lock().unwrap().iter().filter(|m| m.acked).count();
    let cursors = Cursors::default();
    let events = run_module(config.clone(), &cursors, Duration::from_secs(30), |e| {
        records(e).len() >= 5 && acked(&messages) == 5
    });
    assert_eq!(acked(&messages), 5, "every message acknowledged");
    let found = records(&events);
    let names: Vec<String> = found
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.record).unwrap()["finding"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4"]);
    assert_eq!(found[0].provider, CloudProvider::Gcp);
    assert_eq!(found[0].account, "gatewatch-test");
    assert_eq!(found[0].source, "projects/gatewatch-test/subscriptions/scc");
    assert_eq!(found[0].time.as_deref(), Some("2026-11-28T07:00:00.123Z"));
    assert!(
        server
            .requests("/v1/projects/gatewatch-test/subscriptions/scc:pull")
            .len()
            >= 3
    );
    assert_eq!(server.requests("/token").len(), 1, "the token is kept");
    let again = run_module(config, &cursors, Duration::from_secs(2), |_| false);
    assert!(records(&again).is_empty());
}

fn app(server: &Server) -> AadApp {
    AadApp {
        tenant: "tenant-1".into(),
        client_id: "client-1".into(),
        client_secret: Secret("s3cret".into()),
        login_endpoint: server.url(),
    }
}

/// The client-credentials token endpoint, when `r` is for it.
fn token_answer(r: &Received, scope: &str) -> Option<Answer> {
    if r.path != "/tenant-1/oauth2/v2.0/token" {
        return None;
    }
    let form = r.form();
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("client-1")
        && form.get("client_secret").map(String::as_str) == Some("s3cret")
        && form.get("scope").map(String::as_str) == Some(scope);
    Some(match ok {
        true => (
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.test"}),
        ),
        false => (
            400,
            json!({"error": "invalid_client", "error_description": format!("{form:?}")}),
        ),
    })
}

/// The time in `datetime(...)` of a query.
fn datetime_in(query: &str) -> Option<String> {
    let start = query.find("datetime(")? + "datetime(".len();
    let end = query[start..].find(')')? + start;
    Some(query[start..end].to_string())
}

#[test]
fn log_analytics_query() {
    let rows: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(vec![
        ("2026-11-27T23:00:00Z".into(), "old@contoso.com".into()),
        ("2026-11-28T01:00:00Z".into(), "alice@contoso.com".into()),
        ("2026-11-28T02:00:00Z".into(), "bob@contoso.com".into()),
    ]));
    let scope: Arc<Mutex<String>> = Arc::default();
    let (table, wanted) = (rows.clone(), scope.clone());
    let server = Server::start(move |r: &Received| -> Answer {
        if let Some(answer) = token_answer(r, &wanted.lock().unwrap()) {
            return answer;
        }
        if r.bearer() != Some("eyJ.test") {
            return (
                401,
                json!({"error": {"code": "AuthorizationRequiredError"}}),
            );
        }
        if r.path != "/v1/workspaces/ws-1/query" {
            return (404, json!({"error": {"code": "PathNotFoundError"}}));
        }
        let query = r.json()["query"].as_str().unwrap_or_default().to_string();
        let (Some(since), true) = (datetime_in(&query), query.starts_with("SigninLogs | where"))
        else {
            return (
                400,
                json!({"error": {"code": "BadArgumentError", "message": query}}),
            );
        };
        let mut rows: Vec<Value> = table
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t > since)
            .map(|(t, u)| json!([t, u, "0"]))
            .collect();
        rows.sort_by_key(|r| r[0].as_str().unwrap().to_string());
        (
            200,
            json!({"tables": [{"name": "PrimaryResult", "columns": [
            {"name": "TimeGenerated", "type": "datetime"},
            {"name": "UserPrincipalName", "type": "string"},
            {"name": "ResultType", "type": "string"}], "rows": rows}]}),
        )
    });
    *scope.lock().unwrap() = format!("{}/.default", server.url());
    let mut config = config();
    config.log_analytics.push(LogAnalyticsSource {
        name: "signins".into(),
        workspace: "ws-1".into(),
        query: "SigninLogs".into(),
        app: app(&server),
        endpoint: server.url(),
        only_logs_after: Some("2026-11-28".into()),
    });
    let cursors = Cursors::default();
    let timeout = Duration::from_secs(30);
    let users = |events: &[gatewatch_proto::cloud::CloudEvent]| -> Vec<String> {
        records(events)
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.record).unwrap()["UserPrincipalName"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let first = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 2);
    assert_eq!(users(&first), ["alice@contoso.com", "bob@contoso.com"]);
    let row = records(&first)[0];
    assert_eq!(
        (row.provider, row.service.as_str()),
        (CloudProvider::Azure, "log_analytics")
    );
    assert_eq!(row.account, "ws-1");
    assert_eq!(row.time.as_deref(), Some("2026-11-28T01:00:00Z"));

    rows.lock()
        .unwrap()
        .push(("2026-11-28T03:00:00Z".into(), "carol@contoso.com".into()));
    let second = run_module(config, &cursors, timeout, |e| !records(e).is_empty());
    assert_eq!(
        users(&second),
        ["carol@contoso.com"],
        "only rows after the stored time"
    );
    let since: Vec<String> = server
        .requests("/v1/workspaces/ws-1/query")
        .iter()
        .filter_map(|q| datetime_in(q.json()["query"].as_str()?))
        .collect();
    assert_eq!(since[0], "2026-11-28T00:00:00Z", "only_logs_after at first");
    assert_eq!(
        since.last().unwrap(),
        "2026-11-28T02:00:00Z",
        "then the stored time"
    );
}

#[test]
fn graph_signins() {
    let sign_ins: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(
        (0..5)
            .map(|i| (format!("2026-11-28T0{i}:30:00Z"), format!("s{i}")))
            .collect(),
    ));
    let scope: Arc<Mutex<String>> = Arc::default();
    let base: Arc<Mutex<String>> = Arc::default();
    let (log, wanted, own) = (sign_ins.clone(), scope.clone(), base.clone());
    let server = Server::start(move |r: &Received| -> Answer {
        if let Some(answer) = token_answer(r, &wanted.lock().unwrap()) {
            return answer;
        }
        if r.bearer() != Some("eyJ.test") {
            return (
                401,
                json!({"error": {"code": "InvalidAuthenticationToken"}}),
            );
        }
        if r.path != "/v1.0/auditLogs/signIns" {
            return (404, json!({"error": {"code": "ResourceNotFound"}}));
        }
        let filter = r.query.get("$filter").cloned().unwrap_or_default();
        let Some(since) = filter.strip_prefix("createdDateTime gt ") else {
            return (
                400,
                json!({"error": {"code": "BadRequest", "message": filter}}),
            );
        };
        if r.query.get("$orderby").map(String::as_str) != Some("createdDateTime asc") {
            return (
                400,
                json!({"error": {"code": "BadRequest", "message": "orderby"}}),
            );
        }
        let skip: usize = r
            .query
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let matching: Vec<(String, String)> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.as_str() > since)
            .cloned()
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(skip)
            .take(2)
            .map(|(t, id)| {
                json!({"id": id, "createdDateTime": t, "userPrincipalName": "alice@contoso.com",
                "status": {"errorCode": 50126, "failureReason": "Invalid username or password"}})
            })
            .collect();
        let mut answer = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": page});
        if skip + 2 < matching.len() {
            answer["@odata.nextLink"] = json!(format!(
                "{}/v1.0/auditLogs/signIns?$filter=createdDateTime%20gt%20{since}&$orderby=createdDateTime%20asc&$skiptoken={}",
                own.lock().unwrap(),
                skip + 2
            ));
        }
        (200, answer)
    });
    *scope.lock().unwrap() = format!("{}/.default", server.url());
    *base.lock().unwrap() = server.url();
    let mut config = config();
    config.graph.push(GraphSource {
        name: "entra".into(),
        kind: GraphKind::Signins,
        app: app(&server),
        endpoint: server.url(),
        only_logs_after: Some("2026-11-28".into()),
    });
    let ids = |events: &[gatewatch_proto::cloud::CloudEvent]| -> Vec<String> {
        records(events)
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.record).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let cursors = Cursors::default();
    let timeout = Duration::from_secs(30);
    let first = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 5);
    assert_eq!(
        ids(&first),
        ["s0", "s1", "s2", "s3", "s4"],
        "three pages followed"
    );
    let entry = records(&first)[0];
    assert_eq!(
        (entry.service.as_str(), entry.account.as_str()),
        ("graph_signins", "tenant-1")
    );
    assert_eq!(entry.time.as_deref(), Some("2026-11-28T00:30:00Z"));

    sign_ins
        .lock()
        .unwrap()
        .push(("2026-11-28T05:30:00Z".into(), "s5".into()));
    let second = run_module(config, &cursors, timeout, |e| !records(e).is_empty());
    assert_eq!(ids(&second), ["s5"], "only entries after the stored time");
}
