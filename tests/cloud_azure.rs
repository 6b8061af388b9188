//! Cloud module against Azure Storage as Azurite emulates it (blobs; shared-key and SAS
//! authorization), started by each test on a free loopback port (installed by
//! `scripts/ci-cloud.sh`), the module run on the executor with the harness in `cloud_support`.

// The cloud module is in the default build, not in `gateway` (which the ARM runs test).
#![cfg(feature = "cloud")]

mod cloud_support;

use cloud_support::{http, records, run_module, Cursors};
use gatewatch::modules::cloud::azure;
use gatewatch::modules::cloud::{AzureBlobSource, CloudConfig, Secret};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider};
use std::time::Duration;

fn config() -> CloudConfig {
    CloudConfig {
        enabled: true,
        interval_secs: 1,
        ..CloudConfig::default()
    }
}

/// Azurite's well-known development account.
const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A Shared Key signed PUT to Azurite (`rest`: container and blob path, encoded).
fn azure_put(port: u16, rest: &str, query: &[(&str, &str)], extra: &[(&str, &str)], body: &[u8]) {
    let path = format!("/{AZ_ACCOUNT}/{rest}");
    let date = gatewatch::modules::cloud::timefmt::http_date(
        gatewatch::modules::cloud::timefmt::now_secs(),
    );
    let mut headers: Vec<(&str, &str)> =
        vec![("x-ms-date", &date), ("x-ms-version", azure::API_VERSION)];
    headers.extend_from_slice(extra);
    let auth = azure::shared_key(
        AZ_ACCOUNT,
        AZ_KEY,
        "PUT",
        &path,
        query,
        &headers,
        body.len(),
    )
    .unwrap();
    headers.push(("Authorization", &auth));
    let target = match query.is_empty() {
        true => path,
        false => format!(
            "{path}?{}",
            query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        ),
    };
    let (status, answer) = http(port, "PUT", &target, &headers, body);
    assert!(
        status == 201,
        "{target}: HTTP {status}: {}",
        String::from_utf8_lossy(&answer)
    );
}

fn sign_in_lines(from: usize, n: usize) -> Vec<u8> {
    (from..from + n)
        .map(|i| {
            format!(
                "{{\"time\":\"2026-11-28T06:{i:02}:00Z\",\"category\":\"SignInLogs\",\"operationName\":\"Sign-in activity\",\"correlationId\":\"c{i}\"}}\n"
            )
        })
        .collect::<String>()
        .into_bytes()
}

fn blob_path(hour: u32) -> String {
    format!("resourceId=/TENANTS/T1/PROVIDERS/MICROSOFT.AADIAM/y=2026/m=11/d=28/h={hour:02}/m=00/PT1H.json")
}

fn azure_source(emulator: &cloud_support::Emulator) -> AzureBlobSource {
    AzureBlobSource {
        name: "signins".into(),
        account: AZ_ACCOUNT.into(),
        container: "insights-logs-signinlogs".into(),
        prefix: "resourceId=/".into(),
        service: "signin_logs".into(),
        endpoint: Some(format!("{}/{AZ_ACCOUNT}", emulator.url())),
        shared_key: Some(Secret(AZ_KEY.into())),
        sas_token: None,
        only_logs_after: None,
    }
}

fn correlation_ids(events: &[CloudEvent]) -> Vec<String> {
    records(events)
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.record).unwrap();
            v["correlationId"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn azure_blob_logs_once() {
    let Some(azurite) = cloud_support::azurite() else {
        return;
    };
    let port = azurite.port;
    let container = "insights-logs-signinlogs";
    azure_put(port, container, &[("restype", "container")], &[], b"");
    let block = [("x-ms-blob-type", "BlockBlob")];
    let append = [("x-ms-blob-type", "AppendBlob")];
    let enc = |hour| blob_path(hour).replace('=', "%3D");
    azure_put(
        port,
        &format!("{container}/{}", enc(5)),
        &[],
        &block,
        &sign_in_lines(0, 2),
    );
    // The current hour's blob is an append blob that grows while the hour lasts.
    azure_put(port, &format!("{container}/{}", enc(6)), &[], &append, b"");
    let comp = [("comp", "appendblock")];
    azure_put(
        port,
        &format!("{container}/{}", enc(6)),
        &comp,
        &[],
        &sign_in_lines(2, 2),
    );
    let mut config = config();
    config.azure_blob.push(azure_source(&azurite));
    let cursors = Cursors::default();
    let timeout = Duration::from_secs(30);
    let first = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 4);
    assert_eq!(correlation_ids(&first), ["c0", "c1", "c2", "c3"]);
    let record = records(&first)[0];
    assert_eq!(record.provider, CloudProvider::Azure);
    assert_eq!(record.service, "signin_logs");
    assert_eq!(record.account, AZ_ACCOUNT);
    assert_eq!(record.time.as_deref(), Some("2026-11-28T06:00:00Z"));
    assert_eq!(record.source, format!("{container}/{}", blob_path(5)));

    azure_put(
        port,
        &format!("{container}/{}", enc(6)),
        &comp,
        &[],
        &sign_in_lines(4, 1),
    );
    azure_put(
        port,
        &format!("{container}/{}", enc(7)),
        &[],
        &block,
        &sign_in_lines(5, 1),
    );
    let second = run_module(config.clone(), &cursors, timeout, |e| records(e).len() >= 2);
    assert_eq!(correlation_ids(&second), ["c4", "c5"], "only what is new");
    let third = run_module(config, &cursors, Duration::from_secs(3), |_| false);
    assert!(third.is_empty(), "nothing twice: {third:?}");
}

/// An account SAS (version 2019-12-12) for blobs: read and list on everything.
fn account_sas() -> String {
    use base64ct::{Base64, Encoding};
    let (sp, ss, srt, se, sv) = ("rl", "b", "sco", "2099-01-01T00:00:00Z", "2019-12-12");
    let to_sign = format!("{AZ_ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n\n{sv}\n");
    let key = Base64::decode_vec(AZ_KEY).unwrap();
    let sig = Base64::encode_string(&gatewatch::modules::cloud::sigv4::hmac(
        &key,
        to_sign.as_bytes(),
    ));
    let enc = |s: &str| gatewatch::modules::cloud::http::url::encode(s, false);
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}",
        enc(se),
        enc(&sig)
    )
}

#[test]
fn azure_blob_sas_token_is_accepted() {
    let Some(azurite) = cloud_support::azurite() else {
        return;
    };
    let container = "insights-logs-signinlogs";
    azure_put(
        azurite.port,
        container,
        &[("restype", "container")],
        &[],
        b"",
    );
    let name = blob_path(5).replace('=', "%3D");
    let block = [("x-ms-blob-type", "BlockBlob")];
    azure_put(
        azurite.port,
        &format!("{container}/{name}"),
        &[],
        &block,
        &sign_in_lines(0, 3),
    );
    let mut source = azure_source(&azurite);
    source.shared_key = None;
    source.sas_token = Some(Secret(format!("?{}", account_sas())));
    let mut config = config();
    config.azure_blob.push(source);
    let events = run_module(config, &Cursors::default(), Duration::from_secs(30), |e| {
        records(e).len() >= 3
    });
    assert_eq!(correlation_ids(&events), ["c0", "c1", "c2"]);
}

#[test]
fn append_blob_ending_in_a_partial_record_is_finished_when_it_grows() {
    let Some(azurite) = cloud_support::azurite() else {
        return;
    };
    let port = azurite.port;
    let container = "insights-logs-signinlogs";
    azure_put(port, container, &[("restype", "container")], &[], b"");
    let name = format!("{container}/{}", blob_path(6).replace('=', "%3D"));
    azure_put(port, &name, &[], &[("x-ms-blob-type", "AppendBlob")], b"");
    let mut lines = sign_in_lines(0, 2);
    let partial = lines.split_off(lines.len() - 20);
    let comp = [("comp", "appendblock")];
    azure_put(port, &name, &comp, &[], &lines);
    azure_put(port, &name, &comp, &[], &partial[..10]);
    let mut config = config();
    config.azure_blob.push(azure_source(&azurite));
    let cursors = Cursors::default();
    // Several rounds: the partial record is neither sent nor reported skipped.
    let first = run_module(config.clone(), &cursors, Duration::from_secs(3), |_| false);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(correlation_ids(&first), ["c0"]);
    azure_put(port, &name, &comp, &[], &partial[10..]);
    let second = run_module(config, &cursors, Duration::from_secs(30), |e| !e.is_empty());
    assert_eq!(correlation_ids(&second), ["c1"], "{second:?}");
}
