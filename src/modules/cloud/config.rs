//! `[modules.cloud]`: which cloud log stores and APIs are read, with what credentials, and the
//! limits of what is held in memory.
//!
//! Every endpoint can be changed (emulators, sovereign clouds, private endpoints). `https` is the
//! rule; plain `http` is accepted only for a loopback address (an emulator on the same host).
//!
//! ```toml
//! [modules.cloud]
//! enabled = true
//! interval_secs = 300
//!
//! [[modules.cloud.s3]]
//! name = "trail"
//! type = "cloudtrail"            # cloudtrail | guardduty | vpcflow | custom
//! bucket = "org-trail"
//! accounts = ["123456789012"]    # empty: every account found under AWSLogs/
//! regions = ["eu-west-1"]        # empty: every region found
//! only_logs_after = "2026-11-01"
//! access_key_id = "AKIA..."
//! secret_access_key = "..."
//!
//! [[modules.cloud.cloudwatch_logs]]
//! name = "vpn"
//! log_group = "/aws/vpn/gateway"
//! region = "eu-west-1"
//! access_key_id = "AKIA..."
//! secret_access_key = "..."
//!
//! [[modules.cloud.azure_blob]]
//! name = "activity"
//! account = "contosologs"
//! container = "insights-activity-logs"
//! sas_token = "sv=...&sig=..."   # or shared_key = "<base64 account key>"
//!
//! [[modules.cloud.pubsub]]
//! name = "scc"
//! project = "my-project"
//! subscription = "scc-findings"
//! credentials_file = "/etc/gatewatch/gcp-sa.json"
//!
//! [[modules.cloud.log_analytics]]
//! name = "signins"
//! workspace = "00000000-0000-0000-0000-000000000000"
//! query = "SigninLogs"
//! app = { tenant = "contoso.onmicrosoft.com", client_id = "...", client_secret = "..." }
//!
//! [[modules.cloud.graph]]
//! name = "entra"
//! kind = "signins"               # signins | audits
//! app = { tenant = "contoso.onmicrosoft.com", client_id = "...", client_secret = "..." }
//! ```

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the cloud module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 24 MiB: one object of `max_object_bytes` compressed and
    /// decompressed, the TLS session and the CA store.
    pub budget_bytes: usize,
    /// Seconds between polls of every source. Default 300.
    pub interval_secs: u64,
    /// PEM file of the CA certificates trusted for `https` endpoints. Default: Debian's system
    /// bundle, `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: PathBuf,
    /// Largest object, blob or response body read (after decompression), in bytes; larger ones
    /// are reported as skipped. Default 8 MiB.
    pub max_object_bytes: usize,
    /// Seconds one HTTP exchange may take. Default 60.
    pub timeout_secs: u64,
    /// `[[modules.cloud.s3]]`: AWS S3 buckets.
    pub s3: Vec<S3Source>,
    /// `[[modules.cloud.cloudwatch_logs]]`: AWS CloudWatch Logs groups.
    pub cloudwatch_logs: Vec<CloudWatchLogsSource>,
    /// `[[modules.cloud.azure_blob]]`: Azure Storage blob containers.
    pub azure_blob: Vec<AzureBlobSource>,
    /// `[[modules.cloud.pubsub]]`: GCP Pub/Sub pull subscriptions.
    pub pubsub: Vec<PubSubSource>,
    /// `[[modules.cloud.log_analytics]]`: Azure Log Analytics workspace queries.
    pub log_analytics: Vec<LogAnalyticsSource>,
    /// `[[modules.cloud.graph]]`: Microsoft Graph sign-in and directory audit logs.
    pub graph: Vec<GraphSource>,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            enabled: false,
            budget_bytes: 24 * 1024 * 1024,
            interval_secs: 300,
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            max_object_bytes: 8 * 1024 * 1024,
            timeout_secs: 60,
            s3: Vec::new(),
            cloudwatch_logs: Vec::new(),
            azure_blob: Vec::new(),
            pubsub: Vec::new(),
            log_analytics: Vec::new(),
            graph: Vec::new(),
        }
    }
}

/// A credential from the configuration; its `Debug` output hides it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// What an S3 bucket holds, which decides its key layout and record format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum S3Kind {
    /// CloudTrail: `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, `{"Records":[…]}`.
    Cloudtrail,
    /// GuardDuty findings export: `AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/*.jsonl.gz`.
    Guardduty,
    /// VPC flow logs: `AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/*.log.gz`, text lines.
    Vpcflow,
    /// Any bucket: every object under `prefix`, JSON records, JSON lines or text lines.
    Custom,
}

impl S3Kind {
    /// The service name in events, and the folder under `AWSLogs/<account>/`.
    pub fn service(self) -> (&'static str, &'static str) {
        match self {
            S3Kind::Cloudtrail => ("cloudtrail", "CloudTrail"),
            S3Kind::Guardduty => ("guardduty", "GuardDuty"),
            S3Kind::Vpcflow => ("vpcflow", "vpcflowlogs"),
            S3Kind::Custom => ("s3", ""),
        }
    }
}

/// One S3 bucket (`[[modules.cloud.s3]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Source {
    /// Name of this source (unique; it keys the stored read markers).
    pub name: String,
    /// What the bucket holds.
    #[serde(rename = "type")]
    pub kind: S3Kind,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix in front of `AWSLogs/` (or of everything, for `custom`). Default empty.
    #[serde(default)]
    pub prefix: String,
    /// Accounts to read; empty (default): every account found under `AWSLogs/`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions to read; empty (default): every region found.
    #[serde(default)]
    pub regions: Vec<String>,
    /// First day read (`YYYY-MM-DD`, UTC) when there is no marker yet. Default: the day the
    /// module first runs.
    #[serde(default)]
    pub only_logs_after: Option<String>,
    /// S3 endpoint, path-style (`https://s3.eu-west-1.amazonaws.com`, or an emulator's
    /// `http://127.0.0.1:PORT`). Default `https://s3.<region>.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region of the bucket, used to sign requests. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
}

/// One CloudWatch Logs group (`[[modules.cloud.cloudwatch_logs]]`), read with FilterLogEvents.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchLogsSource {
    /// Name of this source (unique; it keys the stored read marker).
    pub name: String,
    /// Log group name.
    pub log_group: String,
    /// Account id put in events (the API does not say it). Default empty.
    #[serde(default)]
    pub account: String,
    /// Region of the group. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint. Default `https://logs.<region>.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// First day read (`YYYY-MM-DD`, UTC) without a marker. Default: the module's first run.
    #[serde(default)]
    pub only_logs_after: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// One Azure Storage container (`[[modules.cloud.azure_blob]]`). One of `shared_key` and
/// `sas_token` is required.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobSource {
    /// Name of this source (unique; it keys the stored read marker).
    pub name: String,
    /// Storage account name.
    pub account: String,
    /// Container name.
    pub container: String,
    /// Blob name prefix. Default empty.
    #[serde(default)]
    pub prefix: String,
    /// Service name put in events. Default `blob`.
    #[serde(default = "default_blob_service")]
    pub service: String,
    /// Blob endpoint including the account when path-style (Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`). Default `https://<account>.blob.core.windows.net`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Account key (base64), for shared-key authorization.
    #[serde(default)]
    pub shared_key: Option<Secret>,
    /// SAS token (the query string, with or without the leading `?`).
    #[serde(default)]
    pub sas_token: Option<Secret>,
    /// Blobs last modified before this day (`YYYY-MM-DD`, UTC) are skipped. Default: none skipped.
    #[serde(default)]
    pub only_logs_after: Option<String>,
}

fn default_blob_service() -> String {
    "blob".into()
}

/// One GCP Pub/Sub pull subscription (`[[modules.cloud.pubsub]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PubSubSource {
    /// Name of this source.
    pub name: String,
    /// Project id.
    pub project: String,
    /// Subscription id.
    pub subscription: String,
    /// Service-account key file (JSON, as the console downloads it).
    pub credentials_file: PathBuf,
    /// Pub/Sub endpoint. Default `https://pubsub.googleapis.com`.
    #[serde(default = "default_pubsub_endpoint")]
    pub endpoint: String,
    /// Token endpoint. Default: the key file's `token_uri`.
    #[serde(default)]
    pub token_uri: Option<String>,
    /// Messages asked for per pull. Default 100.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
}

fn default_pubsub_endpoint() -> String {
    "https://pubsub.googleapis.com".into()
}

fn default_max_messages() -> u32 {
    100
}

/// A Microsoft Entra ID application, authorized by client credentials.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AadApp {
    /// Tenant id or domain.
    pub tenant: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Login endpoint. Default `https://login.microsoftonline.com`.
    #[serde(default = "default_login")]
    pub login_endpoint: String,
}

fn default_login() -> String {
    "https://login.microsoftonline.com".into()
}

/// One Log Analytics query (`[[modules.cloud.log_analytics]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogAnalyticsSource {
    /// Name of this source (unique; it keys the stored last-seen time).
    pub name: String,
    /// Workspace id.
    pub workspace: String,
    /// KQL query; the module appends a `TimeGenerated` filter and an ascending sort.
    pub query: String,
    /// The application that reads.
    pub app: AadApp,
    /// API endpoint. Default `https://api.loganalytics.io`.
    #[serde(default = "default_log_analytics")]
    pub endpoint: String,
    /// First day read (`YYYY-MM-DD`) without a stored time. Default: the module's first run.
    #[serde(default)]
    pub only_logs_after: Option<String>,
}

fn default_log_analytics() -> String {
    "https://api.loganalytics.io".into()
}

/// Which Microsoft Graph log is read.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GraphKind {
    /// `auditLogs/signIns`.
    Signins,
    /// `auditLogs/directoryAudits`.
    Audits,
}

/// One Microsoft Graph audit log (`[[modules.cloud.graph]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GraphSource {
    /// Name of this source (unique; it keys the stored last-seen time).
    pub name: String,
    /// Which log.
    pub kind: GraphKind,
    /// The application that reads (needs `AuditLog.Read.All`).
    pub app: AadApp,
    /// Graph endpoint. Default `https://graph.microsoft.com`.
    #[serde(default = "default_graph")]
    pub endpoint: String,
    /// First day read (`YYYY-MM-DD`) without a stored time. Default: the module's first run.
    #[serde(default)]
    pub only_logs_after: Option<String>,
}

fn default_graph() -> String {
    "https://graph.microsoft.com".into()
}
