//! Cloud security logs: one event per record read from a provider's log store or API.

use serde::{Deserialize, Serialize};

/// The cloud a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloudProvider {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure (and Microsoft Graph / Entra ID).
    Azure,
    /// Google Cloud Platform.
    Gcp,
}

/// What the `cloud` module reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloudEvent {
    /// One record (a CloudTrail record, a GuardDuty finding, a flow-log line, a sign-in, ...).
    Record(Box<CloudRecord>),
    /// An object or message that was passed over, and why (too large, not decodable).
    Skipped {
        /// The cloud.
        provider: CloudProvider,
        /// The service, as in [`CloudRecord::service`].
        service: String,
        /// The object or message passed over.
        source: String,
        /// Why.
        reason: String,
    },
}

impl CloudEvent {
    /// Kind name, see [`crate::Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            CloudEvent::Record(_) => "cloud.record",
            CloudEvent::Skipped { .. } => "cloud.skipped",
        }
    }
}

/// One record, as the provider wrote it, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudRecord {
    /// The cloud.
    pub provider: CloudProvider,
    /// The service: `cloudtrail`, `guardduty`, `vpcflow`, `s3`, `cloudwatch_logs`, `blob`,
    /// `log_analytics`, `graph_signins`, `graph_audits`, `pubsub` (or a configured name).
    pub service: String,
    /// The account: AWS account id, Azure storage account / tenant / workspace, GCP project.
    pub account: String,
    /// The region, when the store is partitioned by region (empty otherwise).
    pub region: String,
    /// Where it was read: `bucket/key`, `container/blob`, a subscription or a query.
    pub source: String,
    /// The record's own time, when it has one (ISO 8601, as written).
    pub time: Option<String>,
    /// The record as written: JSON text for JSON records, the line for text logs.
    pub record: String,
}
