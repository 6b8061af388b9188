//! Cloud security logs: AWS (S3 buckets of CloudTrail, GuardDuty, VPC flow and custom logs),
//! Azure (Storage blobs, Log Analytics, Microsoft Graph audit logs) and GCP (Pub/Sub), read with
//! the providers' REST APIs and reported one event per record.
//!
//! - [`http`]: a bounded HTTP/1.1 client over async-net, rustls for https.
//! - [`sigv4`], [`oauth`]: request signing and tokens.
//! - [`store`]: each object of a bucket or container read once ([`cursor`] markers in the
//!   spool), split by [`records`] after [`gzip`]; [`s3`] and [`azure`] are the two stores.
//! - [`cloudwatch`]: CloudWatch Logs groups.
//! - [`pubsub`], [`log_analytics`], [`graph`]: the pull and query APIs.
//! - `module`: polls every source on the module's interval.
//!
//! Nothing here holds more than one object (or one response page) at a time, and every buffer
//! is bounded by `max_object_bytes` and the module's budget.

#[cfg(feature = "cloud")]
pub mod azure;
#[cfg(feature = "cloud")]
pub mod cloudwatch;
mod config;
#[cfg(feature = "cloud")]
pub mod cursor;
#[cfg(feature = "cloud")]
pub mod graph;
#[cfg(feature = "cloud")]
pub mod gzip;
#[cfg(feature = "cloud")]
pub mod http;
#[cfg(feature = "cloud")]
pub mod log_analytics;
#[cfg(feature = "cloud")]
mod module;
#[cfg(feature = "cloud")]
pub mod oauth;
#[cfg(feature = "cloud")]
pub mod pubsub;
#[cfg(feature = "cloud")]
pub mod records;
#[cfg(feature = "cloud")]
pub mod s3;
#[cfg(feature = "cloud")]
pub mod sigv4;
#[cfg(feature = "cloud")]
pub mod store;
#[cfg(feature = "cloud")]
pub mod timefmt;
#[cfg(feature = "cloud")]
pub mod xml;

pub use config::{
    AadApp, AzureBlobSource, CloudConfig, CloudWatchLogsSource, GraphKind, GraphSource,
    LogAnalyticsSource, PubSubSource, S3Kind, S3Source, Secret,
};
#[cfg(feature = "cloud")]
pub use module::{problems, Cloud};

/// The cursor source name of a source part (`s3:trail:123456789012:eu-west-1`): short enough
/// for the spool's cursor keys, hashed when the configured names make it too long.
#[cfg(feature = "cloud")]
pub fn source_key(kind: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let key = format!("{kind}:{}", parts.join(":"));
    // The spool prefixes the module name (`cloud/`) and keeps keys up to 128 bytes.
    if key.len() <= 100 {
        key
    } else {
        format!(
            "{kind}:{}",
            &hex::encode(Sha256::digest(key.as_bytes()))[..40]
        )
    }
}
