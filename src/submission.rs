//! A submission: the raw payload exactly as received, stored before anything can fail.

use serde::{Deserialize, Serialize};

use crate::parse::Format;

/// The intake channel a submission came through.
pub mod channel {
    pub const HTTP: &str = "http";
    pub const REPLAY: &str = "replay";
    /// An upload to the embedded FTP server.
    pub const FTP: &str = "ftp";
    /// A file that appeared in a watched drop directory.
    pub const DROP_DIR: &str = "drop_dir";
    /// `leadgate import FILE`.
    pub const IMPORT: &str = "import";
}

/// A raw payload and what we know about where it came from.
#[derive(Debug, Clone)]
pub struct Submission {
    pub id: String,
    pub source: String,
    pub channel: &'static str,
    pub format: Format,
    pub content_type: Option<String>,
    /// Headers worth keeping and the peer address, as JSON.
    pub meta: serde_json::Value,
    pub body: Vec<u8>,
    pub received_at: i64,
    /// `Idempotency-Key` header, if the vendor sent one.
    pub idempotency_key: Option<String>,
}

/// A stored submission, as the admin API and replay read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSubmission {
    pub id: String,
    pub source: String,
    pub channel: String,
    pub format: String,
    pub content_type: Option<String>,
    pub meta: serde_json::Value,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_bytes: usize,
    pub received_at: String,
    #[serde(skip)]
    pub received_at_ms: i64,
    pub status: String,
    pub error: Option<String>,
    pub attempts: i64,
}

/// Fresh time-ordered id (UUIDv7): sorts by creation, indexes well.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
