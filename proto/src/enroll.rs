//! Messages of the enrollment service on port 1515 (one request, one response, then close).

use serde::{Deserialize, Serialize};

/// The agent asks to be registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub version: u16,
    /// Agent name (Wazuh: defaults to the hostname).
    pub name: String,
    /// Groups to join; empty means the manager's `default` group.
    #[serde(deserialize_with = "crate::frame::bounded_vec")]
    pub groups: Vec<String>,
    /// The enrollment password, when the manager requires one.
    pub password: Option<String>,
}

/// The manager's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollResponse {
    /// Registered: the agent stores these credentials and pins `manager_ca_der`.
    Accepted {
        agent_id: u32,
        name: String,
        /// The agent's secret key, 64 hex characters (as in Wazuh's `client.keys`).
        key: String,
        /// DER of the CA that signs the manager's server certificates (and nothing else).
        manager_ca_der: Vec<u8>,
    },
    /// Not registered; nothing was stored on the manager.
    Refused {
        reason: EnrollRefusal,
        detail: String,
    },
}

/// Why enrollment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollRefusal {
    /// The password is missing or wrong.
    BadPassword,
    /// The name is empty, too long, or has characters outside `[A-Za-z0-9._-]`.
    InvalidName,
    /// The manager requires an agent certificate signed by its agent CA.
    CertificateRequired,
    /// An agent with that name exists already.
    NameTaken,
    /// The manager could not store the agent.
    Internal,
}

impl core::fmt::Display for EnrollRefusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EnrollRefusal::BadPassword => "invalid enrollment password",
            EnrollRefusal::InvalidName => "invalid agent name",
            EnrollRefusal::CertificateRequired => "a valid agent certificate is required",
            EnrollRefusal::NameTaken => "an agent with this name is already registered",
            EnrollRefusal::Internal => "the manager failed to register the agent",
        })
    }
}
