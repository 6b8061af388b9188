//! The manager's error type: every variant names what it was doing and with which file or peer.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why the manager could not start, or could not answer a request.
#[derive(Debug)]
pub enum ManagerError {
    /// An option is missing, malformed or inconsistent; the message names the option.
    Config(String),
    /// Reading or writing a file failed.
    File {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// Binding or configuring a socket failed.
    Listen {
        addr: String,
        source: std::io::Error,
    },
    /// A certificate or key could not be generated, parsed or used.
    Certificate { what: String, detail: String },
    /// The SQLite store failed.
    Store { what: &'static str, detail: String },
    /// The manager is shutting down (or its store thread stopped) and cannot answer.
    Stopped,
}

impl ManagerError {
    /// A file error with the path and the action that failed.
    pub(crate) fn file(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        ManagerError::File {
            path: path.to_path_buf(),
            what,
            source,
        }
    }

    /// A certificate error.
    pub(crate) fn cert(what: impl Into<String>, detail: impl fmt::Display) -> Self {
        ManagerError::Certificate {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// A store error.
    pub(crate) fn store(what: &'static str, detail: impl fmt::Display) -> Self {
        ManagerError::Store {
            what,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Config(msg) => f.write_str(msg),
            ManagerError::File { path, what, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            ManagerError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ManagerError::Certificate { what, detail } => write!(f, "{what}: {detail}"),
            ManagerError::Store { what, detail } => write!(f, "store: {what}: {detail}"),
            ManagerError::Stopped => f.write_str("the manager is shutting down"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::File { source, .. } | ManagerError::Listen { source, .. } => Some(source),
            _ => None,
        }
    }
}
