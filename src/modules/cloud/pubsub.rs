//! GCP Pub/Sub pull subscriptions (Security Command Center findings, log sinks): REST `pull`,
//! one event per message, then `acknowledge`, authorized by a service-account JWT.
//!
//! A message is acknowledged only once the spool holds its event: each is sent with a marker
//! (its message id), and the acknowledgement waits until the spool's cursor shows the batch's
//! last one. A crash before that leaves the messages unacknowledged, so Pub/Sub delivers them
//! again (at least once; never lost).

use super::config::PubSubSource;
use super::cursor::Marker;
use super::http::{url::encode, HttpClient, Url};
use super::oauth::{self, call_json, ServiceAccount, Tokens};
use super::source_key;
use crate::runtime::{ModuleContext, ModuleError};
use base64ct::{Base64, Encoding};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider, CloudRecord};
use gatewatch_proto::Payload;
use serde_json::Value;
use std::time::Duration;

/// OAuth scope of the Pub/Sub API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
/// Pulls per round at most (each up to `max_messages`), so one busy subscription cannot hold
/// the module.
const MAX_PULLS: usize = 50;
/// How long an acknowledgement waits for the spool to take the batch.
const SPOOL_WAIT: Duration = Duration::from_secs(30);

/// Pulls and acknowledges everything waiting in one subscription; returns the records sent.
pub async fn poll(
    source: &PubSubSource,
    http: &mut HttpClient,
    tokens: &mut Tokens,
    ctx: &ModuleContext,
) -> Result<u64, ModuleError> {
    let fail = |e: String| ModuleError(format!("pubsub `{}`: {e}", source.name));
    let url = Url::parse(&source.endpoint).map_err(|e| fail(format!("endpoint {e}")))?;
    let key = source_key("pubsub", &[&source.name]);
    let subscription = format!(
        "projects/{}/subscriptions/{}",
        source.project, source.subscription
    );
    let mut sent = 0;
    for _ in 0..MAX_PULLS {
        let token = token(source, http, tokens, &key).await.map_err(fail)?;
        let target = format!("{}/v1/{}:pull", url.path, encode_path(&subscription));
        let body = serde_json::json!({"maxMessages": source.max_messages.max(1)}).to_string();
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
        if status == 401 {
            tokens.forget(&key);
        }
        if status != 200 {
            return Err(fail(format!("pull: HTTP {status}: {value}")));
        }
        let Some(messages) = value["receivedMessages"]
            .as_array()
            .filter(|m| !m.is_empty())
        else {
            return Ok(sent);
        };
        let mut ack_ids = Vec::with_capacity(messages.len());
        let mut last = None;
        for received in messages {
            let Some(ack_id) = received["ackId"].as_str() else {
                continue;
            };
            let message = &received["message"];
            let id = message["messageId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let event = message_event(source, &subscription, message);
            let marker = Marker {
                name: id,
                records: sent + 1,
                done: true,
                size: 0,
            };
            let position = marker.encode().unwrap_or_default();
            ctx.send_with_cursor(Payload::Cloud(event), &key, position.clone())
                .await?;
            ack_ids.push(ack_id.to_string());
            last = Some(position);
            sent += 1;
        }
        if let Some(last) = last {
            if !spool_took(ctx, &key, &last).await {
                return Err(fail(
                    "the spool did not take the messages in time; they are left unacknowledged"
                        .into(),
                ));
            }
        }
        let target = format!("{}/v1/{}:acknowledge", url.path, encode_path(&subscription));
        let body = serde_json::json!({ "ackIds": ack_ids }).to_string();
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
        if status != 200 {
            return Err(fail(format!("acknowledge: HTTP {status}: {value}")));
        }
        if ctx.stopping() {
            break;
        }
    }
    Ok(sent)
}

/// Waits until the spool's cursor of `key` is `position` (the spool wrote that event).
async fn spool_took(ctx: &ModuleContext, key: &str, position: &[u8]) -> bool {
    let deadline = std::time::Instant::now() + SPOOL_WAIT;
    loop {
        if ctx.cursor(key).as_deref() == Some(position) {
            return true;
        }
        if std::time::Instant::now() >= deadline || !ctx.sleep(Duration::from_millis(20)).await {
            return false;
        }
    }
}

async fn token(
    source: &PubSubSource,
    http: &mut HttpClient,
    tokens: &mut Tokens,
    key: &str,
) -> Result<String, String> {
    if let Some(token) = tokens.get(key) {
        return Ok(token);
    }
    let account = ServiceAccount::load(&source.credentials_file)?;
    let token_uri = source
        .token_uri
        .clone()
        .unwrap_or_else(|| account.token_uri.clone());
    let (token, expires_in) =
        oauth::service_account_token(http, &account, &token_uri, SCOPE).await?;
    tokens.put(key, &token, expires_in);
    Ok(token)
}

/// Encodes a resource path, keeping its `/` separators.
fn encode_path(path: &str) -> String {
    encode(path, true)
}

/// The event of one message: its data (base64 in the API) as the record.
fn message_event(source: &PubSubSource, subscription: &str, message: &Value) -> CloudEvent {
    let data = message["data"]
        .as_str()
        .and_then(|d| Base64::decode_vec(d).ok())
        .unwrap_or_default();
    CloudEvent::Record(Box::new(CloudRecord {
        provider: CloudProvider::Gcp,
        service: "pubsub".into(),
        account: source.project.clone(),
        region: String::new(),
        source: subscription.to_string(),
        time: message["publishTime"].as_str().map(str::to_string),
        record: String::from_utf8_lossy(&data).into_owned(),
    }))
}
