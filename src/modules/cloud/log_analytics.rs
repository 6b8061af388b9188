//! Azure Log Analytics: the configured KQL query, limited to rows newer than the last one sent
//! (`TimeGenerated`), through the query API with a client-credentials token. Each row becomes a
//! JSON object named by the result's columns; the row's time is the stored marker.

use super::config::LogAnalyticsSource;
use super::cursor::Marker;
use super::http::{url::encode, HttpClient, Url};
use super::oauth::{self, call_json, Tokens};
use super::{source_key, timefmt};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider, CloudRecord};
use gatewatch_proto::Payload;
use serde_json::{Map, Value};

/// The time column rows are ordered and resumed by.
const TIME_COLUMN: &str = "TimeGenerated";

/// The time after which rows (or Graph entries) are read: the stored marker, else
/// `only_logs_after`, else `today`.
pub fn last_seen(
    ctx: &ModuleContext,
    key: &str,
    only_logs_after: Option<&str>,
    today: u64,
) -> String {
    if let Some(marker) = ctx.cursor(key).and_then(|c| Marker::decode(&c)) {
        return marker.name;
    }
    timefmt::iso8601(
        only_logs_after
            .and_then(timefmt::parse_day)
            .unwrap_or(today),
    )
}

/// Sends `event` with `time` as the source's marker.
pub async fn send_timed(
    ctx: &ModuleContext,
    key: &str,
    event: CloudEvent,
    time: &str,
) -> Result<(), ModuleError> {
    let marker = Marker {
        name: time.to_string(),
        records: 0,
        done: true,
        size: 0,
    };
    match marker.encode() {
        Some(position) => {
            ctx.send_with_cursor(Payload::Cloud(event), key, position)
                .await
        }
        None => ctx.send(Payload::Cloud(event)).await,
    }
}

/// Runs the query of one source for rows not sent yet; returns the rows sent.
pub async fn poll(
    source: &LogAnalyticsSource,
    http: &mut HttpClient,
    tokens: &mut Tokens,
    ctx: &ModuleContext,
    today: u64,
) -> Result<u64, ModuleError> {
    let fail = |e: String| ModuleError(format!("log_analytics `{}`: {e}", source.name));
    let url = Url::parse(&source.endpoint).map_err(|e| fail(format!("endpoint {e}")))?;
    let key = source_key("la", &[&source.name]);
    let token = oauth::app_token(http, tokens, &key, &source.app, &source.endpoint)
        .await
        .map_err(fail)?;
    let since = last_seen(ctx, &key, source.only_logs_after.as_deref(), today);
    let query = format!(
        "{} | where {TIME_COLUMN} > datetime({since}) | sort by {TIME_COLUMN} asc",
        source.query
    );
    let target = format!(
        "{}/v1/workspaces/{}/query",
        url.path,
        encode(&source.workspace, false)
    );
    let body = serde_json::json!({ "query": query }).to_string();
    let (status, value) = call_json(
        http,
        "POST",
        &url,
        target,
        Some(&token),
        body.as_bytes(),
        false,
    )
    .await
    .map_err(fail)?;
    if status == 401 || status == 403 {
        tokens.forget(&key);
    }
    if status != 200 {
        return Err(fail(format!("query: HTTP {status}: {value}")));
    }
    let mut sent = 0;
    for table in value["tables"].as_array().into_iter().flatten() {
        let columns: Vec<&str> = table["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default())
            .collect();
        for row in table["rows"].as_array().into_iter().flatten() {
            let Some(cells) = row.as_array() else {
                continue;
            };
            let object: Map<String, Value> = columns
                .iter()
                .zip(cells)
                .map(|(name, cell)| (name.to_string(), cell.clone()))
                .collect();
            let time = object
                .get(TIME_COLUMN)
                .and_then(Value::as_str)
                .unwrap_or(&since)
                .to_string();
            let event = CloudEvent::Record(Box::new(CloudRecord {
                provider: CloudProvider::Azure,
                service: "log_analytics".into(),
                account: source.workspace.clone(),
                region: String::new(),
                source: source.name.clone(),
                time: Some(time.clone()),
                record: Value::Object(object).to_string(),
            }));
            send_timed(ctx, &key, event, &time).await?;
            sent += 1;
        }
    }
    Ok(sent)
}
