//! AWS CloudWatch Logs groups: `FilterLogEvents` (JSON over POST, SigV4 for service `logs`),
//! from the stored time on, following `nextToken` pages.
//!
//! The marker is the last event's timestamp (milliseconds) and the ids of the events sent at that
//! millisecond; the next round starts at that millisecond and skips those ids, so events that
//! share a timestamp are neither lost nor sent twice (up to the ids the marker can hold).

use super::config::CloudWatchLogsSource;
use super::cursor::Marker;
use super::http::{HttpClient, Request, Url};
use super::sigv4::{self, Credentials, Signing};
use super::{source_key, timefmt};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider, CloudRecord};
use gatewatch_proto::Payload;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Largest response page read.
const MAX_PAGE: usize = 4 * 1024 * 1024;
/// Pages read per round at most.
const MAX_PAGES: usize = 100;
/// Ids of same-millisecond events kept in the marker at most.
const MAX_IDS: usize = 6;

/// Where a group stands: the last timestamp and the ids sent at it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Milliseconds since the epoch of the last event sent.
    pub millis: u64,
    /// Ids of the events sent at `millis`.
    pub ids: Vec<String>,
}

impl Position {
    fn to_marker(&self) -> Marker {
        Marker {
            name: format!("{} {}", self.millis, self.ids.join(",")),
            records: 0,
            done: true,
            size: 0,
        }
    }

    fn from_marker(marker: &Marker) -> Option<Position> {
        let (millis, ids) = marker.name.split_once(' ')?;
        Some(Position {
            millis: millis.parse().ok()?,
            ids: ids
                .split(',')
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Takes in an event; false when it was already sent.
    fn advance(&mut self, millis: u64, id: &str) -> bool {
        if millis < self.millis || (millis == self.millis && self.ids.iter().any(|i| i == id)) {
            return false;
        }
        if millis > self.millis {
            self.millis = millis;
            self.ids.clear();
        }
        if self.ids.len() == MAX_IDS {
            self.ids.remove(0);
        }
        self.ids.push(id.to_string());
        true
    }
}

/// Reads the events of one group not sent yet; returns the events sent.
pub async fn poll(
    source: &CloudWatchLogsSource,
    http: &mut HttpClient,
    ctx: &ModuleContext,
    first_day: u64,
) -> Result<u64, ModuleError> {
    let fail = |e: String| ModuleError(format!("cloudwatch_logs `{}`: {e}", source.name));
    let endpoint = source
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://logs.{}.amazonaws.com", source.region));
    let url = Url::parse(&endpoint).map_err(|e| fail(format!("endpoint {e}")))?;
    let key = source_key("logs", &[&source.name]);
    let mut position = ctx
        .cursor(&key)
        .and_then(|c| Marker::decode(&c))
        .and_then(|m| Position::from_marker(&m))
        .unwrap_or(Position {
            millis: first_day * 1000,
            ids: Vec::new(),
        });
    let start = position.millis;
    let mut token: Option<String> = None;
    let mut sent = 0;
    for _ in 0..MAX_PAGES {
        let mut body = serde_json::json!({
            "logGroupName": source.log_group,
            "startTime": start,
            "limit": 1000,
        });
        if let Some(token) = &token {
            body["nextToken"] = Value::String(token.clone());
        }
        let page = filter_log_events(source, http, &url, body.to_string())
            .await
            .map_err(fail)?;
        for event in page["events"].as_array().into_iter().flatten() {
            let millis = event["timestamp"].as_u64().unwrap_or(0);
            let id = event["eventId"].as_str().unwrap_or_default();
            if !position.advance(millis, id) {
                continue;
            }
            let record = CloudEvent::Record(Box::new(CloudRecord {
                provider: CloudProvider::Aws,
                service: "cloudwatch_logs".into(),
                account: source.account.clone(),
                region: source.region.clone(),
                source: format!(
                    "{}/{}",
                    source.log_group,
                    event["logStreamName"].as_str().unwrap_or_default()
                ),
                time: Some(timefmt::iso8601(millis / 1000)),
                record: event["message"].as_str().unwrap_or_default().to_string(),
            }));
            let marker = position.to_marker().encode().unwrap_or_default();
            ctx.send_with_cursor(Payload::Cloud(record), &key, marker)
                .await?;
            sent += 1;
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() || ctx.stopping() {
            break;
        }
    }
    Ok(sent)
}

/// One signed `FilterLogEvents` call.
async fn filter_log_events(
    source: &CloudWatchLogsSource,
    http: &mut HttpClient,
    url: &Url,
    body: String,
) -> Result<Value, String> {
    let host = url.host_header();
    let path = if url.path.is_empty() { "/" } else { &url.path };
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    let signing = Signing {
        method: "POST",
        host: &host,
        path,
        query: &[],
        region: &source.region,
        service: "logs",
        payload_sha256: &hash,
        now: timefmt::now_secs(),
    };
    let creds = Credentials {
        access_key_id: &source.access_key_id,
        secret_access_key: &source.secret_access_key.0,
        session_token: source.session_token.as_ref().map(|t| t.0.as_str()),
    };
    let extra = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Logs_20140328.FilterLogEvents"),
    ];
    let (target, headers) = sigv4::sign(&signing, creds, &extra);
    let request = Request {
        method: "POST",
        target,
        headers,
        body: body.as_bytes(),
    };
    let response = http
        .send(url, &request, MAX_PAGE)
        .await
        .map_err(|e| e.to_string())?;
    if response.head.status != 200 {
        return Err(format!(
            "FilterLogEvents: HTTP {}: {}",
            response.head.status,
            response.snippet(300)
        ));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("FilterLogEvents: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_the_same_millisecond_are_sent_once() {
        let mut position = Position::default();
        assert!(position.advance(5, "a"));
        assert!(position.advance(5, "b"));
        let stored = Position::from_marker(&position.to_marker()).unwrap();
        assert_eq!(stored, position);
        let mut resumed = stored;
        assert!(!resumed.advance(5, "a"));
        assert!(!resumed.advance(4, "z"));
        assert!(resumed.advance(5, "c"));
        assert!(resumed.advance(6, "a"));
        assert_eq!(resumed.ids, ["a"]);
    }
}
