//! Reading log objects from a bucket or container, each record once.
//!
//! S3 and Azure Storage look the same from here: a listing of object names in lexical order and
//! a way to fetch one. [`read_new_objects`] lists after the source's marker, fetches each new
//! object, splits it into records and sends each with the marker of the record after it, so the
//! spool always holds the position of the last record it accepted: a restart resumes inside an
//! object, never reading a record twice.

use super::cursor::Marker;
use super::gzip;
use super::records::Records;
use super::timefmt;
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::cloud::{CloudEvent, CloudProvider, CloudRecord};
use gatewatch_proto::Payload;
use serde::Deserialize;

/// An object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Key or blob name.
    pub name: String,
    /// Last modification, Unix seconds (0 when unknown).
    pub modified: u64,
    /// Size in bytes as listed.
    pub size: u64,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    /// Objects, in lexical order.
    pub objects: Vec<Object>,
    /// Common prefixes (with a delimiter).
    pub prefixes: Vec<String>,
    /// Token of the next page.
    pub next: Option<String>,
}

/// Why an object could not be fetched.
pub enum Fetch {
    /// Passed over, with the reason (too large, gone); reading goes on.
    Skip(String),
    /// The store failed; the round stops and is retried.
    Fail(String),
}

impl From<super::http::HttpError> for Fetch {
    /// An object too large for the limit or the budget is passed over; anything else stops the
    /// round.
    fn from(e: super::http::HttpError) -> Fetch {
        use super::http::HttpError;
        match e {
            HttpError::TooLarge { .. } | HttpError::OverBudget { .. } => Fetch::Skip(e.to_string()),
            other => Fetch::Fail(other.to_string()),
        }
    }
}

/// A bucket or container.
#[allow(async_fn_in_trait)] // Used only on the agent's one-thread executor: no `Send` needed.
pub trait Store {
    /// Objects under `prefix` named after `after`, from page `page`; with `delimiter`, the
    /// common prefixes instead of what lies below them.
    async fn list(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        delimiter: bool,
        page: Option<&str>,
    ) -> Result<Page, String>;
    /// The bytes of one object, at most `limit`.
    async fn get(&mut self, name: &str, limit: usize) -> Result<Vec<u8>, Fetch>;
}

/// What every record of a prefix shares.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The cloud.
    pub provider: CloudProvider,
    /// The service name in events.
    pub service: String,
    /// Account (empty: taken from each record when it names one).
    pub account: String,
    /// Region (may be empty).
    pub region: String,
    /// Bucket or container, put in front of object names in events.
    pub container: String,
}

/// Where and how to read one prefix.
pub struct Scope<'a> {
    /// Cursor source name of this prefix.
    pub key: &'a str,
    /// Prefix listed.
    pub prefix: &'a str,
    /// Without a marker, read only names after this one.
    pub floor: Option<String>,
    /// Objects modified before this (Unix seconds) are passed over.
    pub min_modified: u64,
    /// Largest object, after decompression.
    pub max_bytes: usize,
    /// First-line prefix of a text header (VPC flow logs: `version `).
    pub header_prefix: Option<&'a str>,
    /// Whether objects may still grow after being listed (Azure append blobs): then the last
    /// object is read again for new records at the next round.
    pub growing: bool,
}

/// Reads the objects of `scope` not read yet; returns the number of records sent.
pub async fn read_new_objects(
    store: &mut impl Store,
    ctx: &ModuleContext,
    scope: &Scope<'_>,
    origin: &Origin,
) -> Result<u64, ModuleError> {
    let marker = ctx.cursor(scope.key).and_then(|c| Marker::decode(&c));
    let mut sent = 0;
    let mut after = scope.floor.clone();
    // A growing object (an append blob) stays open: when the listing shows it larger than it
    // was, its records past the marker are read.
    let mut growing = None;
    if let Some(marker) = &marker {
        if !marker.done && scope.growing {
            growing = Some(marker);
        } else if !marker.done {
            // Stopped inside an object: its remaining records first.
            let object = Object {
                name: marker.name.clone(),
                modified: 0,
                size: marker.size,
            };
            sent += read_object(store, ctx, scope, origin, &object, marker.records).await?;
        }
        after = Some(marker.name.clone());
    }
    let mut page: Option<String> = None;
    loop {
        if ctx.stopping() {
            return Ok(sent);
        }
        let listing = store
            .list(scope.prefix, after.as_deref(), false, page.as_deref())
            .await
            .map_err(|e| ModuleError(format!("{}: listing {}: {e}", scope.key, scope.prefix)))?;
        for object in &listing.objects {
            if let Some(marker) = growing.filter(|m| m.name == object.name) {
                if object.size != marker.size {
                    sent += read_object(store, ctx, scope, origin, object, marker.records).await?;
                }
                continue;
            }
            if after.as_deref().is_some_and(|a| object.name.as_str() <= a) {
                continue;
            }
            if object.modified != 0 && object.modified < scope.min_modified {
                continue;
            }
            if ctx.stopping() {
                return Ok(sent);
            }
            sent += read_object(store, ctx, scope, origin, object, 0).await?;
            futures_lite::future::yield_now().await;
        }
        match listing.next {
            Some(next) => page = Some(next),
            None => return Ok(sent),
        }
    }
}

/// Sends the records of `object` from record `skip` on.
async fn read_object(
    store: &mut impl Store,
    ctx: &ModuleContext,
    scope: &Scope<'_>,
    origin: &Origin,
    object: &Object,
    skip: u64,
) -> Result<u64, ModuleError> {
    let source = format!("{}/{}", origin.container, object.name);
    let data = match store.get(&object.name, scope.max_bytes).await {
        Ok(data) => data,
        Err(Fetch::Fail(why)) => return Err(ModuleError(format!("{source}: {why}"))),
        Err(Fetch::Skip(why)) => {
            return skipped(ctx, scope, origin, &object.name, source, why).await
        }
    };
    let data = if gzip::is_gzip(&data) {
        match gzip::gunzip(&data, scope.max_bytes, ctx.memory()) {
            Ok(plain) => plain,
            Err(why) => return skipped(ctx, scope, origin, &object.name, source, why).await,
        }
    } else {
        data
    };
    let mut records = match Records::new(&data, scope.header_prefix) {
        Ok(records) => records,
        Err(why) => return skipped(ctx, scope, origin, &object.name, source, why).await,
    };
    let header = records.header;
    let mut index = 0u64;
    let mut sent = 0;
    let mut next = records.next();
    while let Some(item) = next {
        let record = match item {
            Ok(record) => record,
            // A growing blob may end in a record still being written: wait for it to grow.
            Err(why) if scope.growing => {
                log::debug!("cloud: {source}: stopped at an incomplete record: {why}");
                return Ok(sent);
            }
            Err(why) => return skipped(ctx, scope, origin, &object.name, source, why).await,
        };
        next = records.next();
        index += 1;
        if index <= skip {
            continue;
        }
        let marker = Marker {
            name: object.name.clone(),
            records: index,
            done: next.is_none() && !scope.growing,
            size: object.size,
        };
        let event = record_event(origin, &source, record, header);
        send(ctx, scope.key, event, &marker).await?;
        sent += 1;
        if sent % 256 == 0 {
            futures_lite::future::yield_now().await;
        }
        if ctx.stopping() {
            break;
        }
    }
    Ok(sent)
}

/// Reports an object passed over, and moves the marker past it.
async fn skipped(
    ctx: &ModuleContext,
    scope: &Scope<'_>,
    origin: &Origin,
    name: &str,
    source: String,
    reason: String,
) -> Result<u64, ModuleError> {
    log::warn!("cloud: {source} skipped: {reason}");
    let event = CloudEvent::Skipped {
        provider: origin.provider,
        service: origin.service.clone(),
        source,
        reason,
    };
    let marker = Marker {
        name: name.to_string(),
        records: 0,
        done: true,
        size: 0,
    };
    send(ctx, scope.key, event, &marker).await?;
    Ok(0)
}

async fn send(
    ctx: &ModuleContext,
    key: &str,
    event: CloudEvent,
    marker: &Marker,
) -> Result<(), ModuleError> {
    let payload = Payload::Cloud(event);
    match marker.encode() {
        Some(position) => ctx.send_with_cursor(payload, key, position).await,
        None => {
            log::warn!(
                "cloud: {key}: object name over the marker size; it will be read again after a restart"
            );
            ctx.send(payload).await
        }
    }
}

/// The fields of a JSON record that events carry beside it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Stamp {
    event_time: Option<String>,
    updated_at: Option<String>,
    time: Option<String>,
    recipient_account_id: Option<String>,
    account_id: Option<String>,
}

/// The event of one record.
pub fn record_event(
    origin: &Origin,
    source: &str,
    record: &[u8],
    header: Option<&str>,
) -> CloudEvent {
    let text = String::from_utf8_lossy(record);
    let mut account = origin.account.clone();
    let mut time = None;
    let record = if record.first() == Some(&b'{') {
        let stamp: Stamp = serde_json::from_slice(record).unwrap_or_default();
        time = stamp.event_time.or(stamp.updated_at).or(stamp.time);
        if account.is_empty() {
            account = stamp
                .recipient_account_id
                .or(stamp.account_id)
                .unwrap_or_default();
        }
        text.into_owned()
    } else if let Some(header) = header {
        // A flow-log line becomes an object named by the header's fields.
        let mut object = serde_json::Map::new();
        for (name, value) in header.split_whitespace().zip(text.split_whitespace()) {
            object.insert(
                name.to_string(),
                serde_json::Value::String(value.to_string()),
            );
        }
        if let Some(start) = object.get("start").and_then(|v| v.as_str()) {
            time = start.parse().ok().map(timefmt::iso8601);
        }
        serde_json::Value::Object(object).to_string()
    } else {
        text.into_owned()
    };
    CloudEvent::Record(Box::new(CloudRecord {
        provider: origin.provider,
        service: origin.service.clone(),
        account,
        region: origin.region.clone(),
        source: source.to_string(),
        time,
        record,
    }))
}
