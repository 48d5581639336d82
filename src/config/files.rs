//! The on-disk shape of config files (serde), with defaults and strictness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::env::EnvString;
use super::{ConfigProblem, duration};
use crate::dedupe::Scope;

/// `leadgate.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MainFile {
    pub server: ServerFile,
    pub store: StoreFile,
    pub admin: AdminFile,
    pub metrics: MetricsFile,
    pub dedupe: DedupeFile,
    pub log: LogFile,
    pub outbox: OutboxFile,
    /// File intake: processing, the FTP server, the drop directory.
    pub files: super::file_intake::FilesFile,
    pub ftp: super::file_intake::FtpFile,
    pub drop_dir: super::file_intake::DropDirFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxFile {
    /// How long a worker owns a delivery it is attempting (longer than any buyer timeout).
    #[serde(deserialize_with = "duration::de")]
    pub lease: Duration,
    /// Delivery attempts in flight at once, per instance.
    pub concurrency: usize,
    /// Longest pause between looks at the queue when nothing wakes the worker.
    #[serde(deserialize_with = "duration::de")]
    pub poll: Duration,
}

impl Default for OutboxFile {
    fn default() -> Self {
        Self { lease: Duration::from_secs(120), concurrency: 64, poll: Duration::from_secs(1) }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    /// Address the HTTP API listens on.
    pub listen: EnvString,
    /// Largest request body accepted; bigger bodies get 413.
    pub max_body_bytes: usize,
    /// A request taking longer is answered 503.
    #[serde(deserialize_with = "duration::de")]
    pub request_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[serde(deserialize_with = "duration::de")]
    pub shutdown_grace: Duration,
}

impl Default for ServerFile {
    fn default() -> Self {
        Self {
            listen: EnvString::literal("127.0.0.1:8080"),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreFile {
    /// `sqlite://path` or `postgres://…`; the CLI flag and LEADGATE_DATABASE_URL win.
    pub url: Option<EnvString>,
    /// Most submissions committed in one transaction (group commit).
    pub batch_max: usize,
    /// SQLite `synchronous`: `full` (default, durable on power loss) or `normal`.
    pub synchronous: Synchronous,
}

impl Default for StoreFile {
    fn default() -> Self {
        Self { url: None, batch_max: 256, synchronous: Synchronous::Full }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    /// Admin API keys (`sha256:…` or `${ENV}`).
    pub keys: Vec<EnvString>,
}

/// `[metrics]`: who may scrape `GET /metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsFile {
    /// Keys for `/metrics` only (`sha256:…` or `${ENV}`), so a Prometheus server need not
    /// hold the admin key. Empty: loopback clients may scrape without a key.
    pub keys: Vec<EnvString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupeFile {
    /// Key sets: a duplicate when ANY set matches; within a set ALL fields must match.
    pub keys: Vec<Vec<String>>,
    /// How long a lead blocks its duplicates.
    #[serde(deserialize_with = "duration::de")]
    pub window: Duration,
    /// `global` or `source`.
    pub scope: Scope,
}

impl Default for DedupeFile {
    fn default() -> Self {
        Self {
            keys: vec![vec!["email".into()], vec!["phone".into()]],
            window: Duration::from_secs(30 * 86_400),
            scope: Scope::Global,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFile {
    /// `pretty` for a terminal, `json` for log shippers.
    pub format: LogFormat,
}

/// `sources/<name>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceFile {
    /// Defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// A disabled source's keys are refused.
    pub enabled: bool,
    /// API keys (`sha256:…` or `${ENV}`).
    pub keys: Vec<EnvString>,
    /// Region for phone numbers written without a country code.
    pub default_region: String,
    /// Lower-case the local part of e-mail addresses too.
    pub lowercase_email_local: bool,
    /// Vendor field name → canonical field (`custom.x`, `full_name`, `consent.text` …).
    pub aliases: BTreeMap<String, String>,
    pub xml: XmlFile,
    pub validate: ValidateFile,
    /// Overrides the global dedupe policy for this source.
    pub dedupe: Option<DedupeFile>,
    /// The source's FTP account (when the FTP drop is enabled).
    pub ftp: Option<super::file_intake::SourceFtpFile>,
    /// How the source's files are read (format, sheet, delimiter, column mapping).
    pub files: super::file_intake::SourceFilesFile,
    /// Enables `POST /v1/sources/<name>/google-ads` (Google Ads lead-form webhook).
    pub google_ads: Option<super::vendors::GoogleAdsFile>,
    /// Enables `/v1/sources/<name>/meta` (Meta Lead Ads webhook + Graph API fetch).
    pub meta: Option<super::vendors::MetaFile>,
    /// Enables `POST /v1/sources/<name>/hubspot` (HubSpot Forms API v3 bodies).
    pub hubspot: Option<super::vendors::HubspotFile>,
    /// Enables `POST /v1/sources/<name>/web-to-lead` (Salesforce Web-to-Lead posts).
    pub web_to_lead: Option<super::vendors::WebToLeadFile>,
    /// Enables `POST /v1/sources/<name>/leadconduit` (LeadConduit-style posts).
    pub leadconduit: Option<super::vendors::LeadconduitFile>,
    /// E-mail parsing: pinned template, size limit, DKIM requirement.
    pub email: super::email::EmailFile,
    /// IMAP mailboxes whose mail is this source's leads.
    pub mailboxes: Vec<super::email::MailboxFile>,
    /// Tell the vendor what became of its leads (returns, conversions) by webhook.
    pub closed_loop: Option<ClosedLoopFile>,
}

/// `[closed_loop]` of a source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoopFile {
    pub url: EnvString,
    /// Standard Webhooks secret (`whsec_…`) to sign the relays with.
    #[serde(default)]
    pub secret: Option<EnvString>,
    /// Which dispositions are relayed.
    #[serde(default = "default_relayed")]
    pub events: Vec<crate::claim::DispositionKind>,
    /// Private/loopback ranges the vendor's endpoint may be on (SSRF guard exceptions).
    #[serde(default)]
    pub allow_private: Vec<String>,
    #[serde(default = "ten_seconds", deserialize_with = "duration::de")]
    pub timeout: Duration,
}

fn default_relayed() -> Vec<crate::claim::DispositionKind> {
    use crate::claim::DispositionKind;
    vec![DispositionKind::Returned, DispositionKind::Converted]
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl Default for SourceFile {
    fn default() -> Self {
        Self {
            name: None,
            enabled: true,
            keys: Vec::new(),
            default_region: "US".into(),
            lowercase_email_local: true,
            aliases: BTreeMap::new(),
            xml: XmlFile::default(),
            validate: ValidateFile::default(),
            dedupe: None,
            ftp: None,
            files: Default::default(),
            google_ads: None,
            meta: None,
            hubspot: None,
            web_to_lead: None,
            leadconduit: None,
            email: super::email::EmailFile::default(),
            mailboxes: Vec::new(),
            closed_loop: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmlFile {
    /// The repeated record element of batch documents (guessed when absent).
    pub record: Option<String>,
    /// Element path → field, for nested documents (`"lead/contact/first_name" = "first_name"`).
    pub paths: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateFile {
    /// Required fields; `"email or phone"` needs one of them.
    pub required: Vec<String>,
}

/// Reads and deserializes one TOML file, recording problems with line and column.
pub fn read<T: DeserializeOwned>(path: &Path, problems: &mut Vec<ConfigProblem>) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigProblem {
                file: path.to_path_buf(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot read: {e}"),
            });
            return None;
        }
    };
    match toml::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, column) = match e.span() {
                Some(span) => line_col(&text, span.start),
                None => (None, None),
            };
            problems.push(ConfigProblem {
                file: path.to_path_buf(),
                line,
                column,
                field: None,
                message: e.message().trim().to_string(),
            });
            None
        }
    }
}

/// A CEL compile error of the expression at `span` (the TOML string, quotes included) of
/// `path`, placed at the file's line and column rather than the expression's: an operator
/// edits the file, not the expression. The CEL message starts `line L, column C: `, counted
/// inside the expression (both 1-based). Escapes in a basic
/// string are not unfolded, so a position after one is off by the escape's length.
pub fn cel_problem(path: &Path, field: String, span: std::ops::Range<usize>, message: &str) -> ConfigProblem {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let unplaced = || ConfigProblem {
        file: path.to_path_buf(),
        line: None,
        column: None,
        field: Some(field.clone()),
        message: message.to_owned(),
    };
    let Some((line, column, rest)) = cel_position(message) else { return unplaced() };
    let Some(value) = text.get(span.start..span.end) else { return unplaced() };
    let mut start = span.start;
    if value.starts_with("\"\"\"") || value.starts_with("'''") {
        start += 3;
        // A newline right after the opening quotes is not part of the string.
        let after = text.get(start..).unwrap_or("");
        start += if after.starts_with("\r\n") { 2 } else { usize::from(after.starts_with('\n')) };
    } else {
        start += 1;
    }
    let mut offset = start;
    for _ in 1..line {
        match text.get(offset..).and_then(|t| t.find('\n')) {
            Some(i) => offset += i + 1,
            None => return unplaced(),
        }
    }
    let line_text = text.get(offset..).unwrap_or("");
    offset += line_text.chars().take(column.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
    let (line, column) = line_col(&text, offset.min(span.end));
    ConfigProblem { file: path.to_path_buf(), line, column, field: Some(field), message: rest.to_owned() }
}

/// `line L, column C: message` → (L, C, message).
fn cel_position(message: &str) -> Option<(usize, usize, &str)> {
    let rest = message.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(", column ")?;
    let (column, rest) = rest.split_once(": ")?;
    Some((line.parse().ok()?, column.parse().ok()?, rest))
}

fn line_col(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

/// The `*.toml` files of a directory, sorted; a missing directory is simply empty.
pub fn toml_files(dir: &Path, problems: &mut Vec<ConfigProblem>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(ConfigProblem {
                file: dir.to_path_buf(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot list: {e}"),
            });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}
