//! E-mail intake settings of a source (`[email]`, `[email.dkim]`, `[[mailboxes]]` in
//! `sources/<name>.toml`) and the template files (`<config>/parsers/*.toml`).
//!
//! ```toml
//! [email]
//! template = "homepros"          # optional: always this template
//! max_message_bytes = 10485760   # bigger messages go to the failed folder unread
//!
//! [email.dkim]                   # optional: quarantine mail without the vendor's DKIM pass
//! domains = ["homepros.example"]
//! # keys = { "s1._domainkey.homepros.example" = "v=DKIM1; k=rsa; p=…" }  # pinned, else DNS
//!
//! [[mailboxes]]
//! host = "imap.example.com"
//! port = 993                     # default: 993 implicit TLS, 143 otherwise
//! tls = "implicit"               # implicit | starttls | none (none: loopback only)
//! user = "leads@example.com"
//! password = "${HOMEPROS_IMAP_PASSWORD}"
//! folder = "INBOX"
//! processed_folder = "leadgate/processed"
//! failed_folder = "leadgate/failed"
//! poll_interval = "60s"          # when the server has no IDLE (or idle = false)
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use serde::Deserialize;

use super::env::EnvString;
use super::{ConfigProblem, duration, files};
use crate::parse::template::{Template, Templates};

/// `[email]` of a source file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailFile {
    /// Parse every message of this source with this template (by name), never by matching.
    pub template: Option<String>,
    /// Largest message fetched (RFC822.SIZE is checked before FETCH); bigger ones go to
    /// the failed folder unread, with their headers kept as a failed submission.
    pub max_message_bytes: usize,
    /// Require a DKIM pass from the vendor's domain; unauthenticated mail is quarantined.
    pub dkim: Option<DkimFile>,
}

impl Default for EmailFile {
    fn default() -> Self {
        Self { template: None, max_message_bytes: 25 * 1024 * 1024, dkim: None }
    }
}

/// `[email.dkim]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimFile {
    /// Signing domains (`d=`) accepted as the vendor's; subdomains count.
    pub domains: Vec<String>,
    /// Pinned public keys: `selector._domainkey.domain` → the DKIM TXT record. Looked up in
    /// DNS when not pinned.
    pub keys: BTreeMap<String, String>,
}

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No TLS: refused unless the host is a loopback address (test servers).
    None,
}

/// One `[[mailboxes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxFile {
    /// Shown in logs and status; defaults to `user@host/folder`.
    pub name: Option<String>,
    pub host: EnvString,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
    pub user: EnvString,
    /// Use an `${ENV}` reference.
    pub password: EnvString,
    #[serde(default = "inbox")]
    pub folder: String,
    /// Where processed messages are moved; without it they are flagged and stay.
    pub processed_folder: Option<String>,
    /// Where malformed, oversize, quarantined and template-less messages are moved;
    /// without it they are flagged and stay.
    pub failed_folder: Option<String>,
    /// Use IMAP IDLE when the server offers it (new mail becomes a lead within about a second).
    #[serde(default = "yes")]
    pub idle: bool,
    /// How often to look for new mail without IDLE.
    #[serde(default = "one_minute", deserialize_with = "duration::de")]
    pub poll_interval: Duration,
    /// Longest wait between reconnection attempts (the backoff doubles up to it).
    #[serde(default = "five_minutes", deserialize_with = "duration::de")]
    pub max_backoff: Duration,
    /// PEM file of the CA(s) to trust instead of the system's (a private mail server).
    pub ca_file: Option<PathBuf>,
}

fn inbox() -> String {
    "INBOX".into()
}
fn yes() -> bool {
    true
}
fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

/// A compiled mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// `source/name`: the key of its progress and dedupe records.
    pub id: String,
    pub source: String,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: String,
    pub password: String,
    pub folder: String,
    pub processed_folder: Option<String>,
    pub failed_folder: Option<String>,
    pub idle: bool,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
    pub ca_file: Option<PathBuf>,
}

/// The DKIM requirement of a source.
#[derive(Clone)]
pub struct DkimPolicy {
    /// Lower-cased signing domains.
    pub domains: Vec<String>,
    /// FQDN without the trailing dot, lower-cased → key record (checked at load; parsed
    /// again by the channel, since parsed keys cannot cross the parser's unwind boundary).
    pub keys: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for DkimPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimPolicy").field("domains", &self.domains).field("keys", &self.keys.len()).finish()
    }
}

/// A source's compiled e-mail settings.
#[derive(Debug, Clone, Default)]
pub struct SourceEmail {
    pub mailboxes: Vec<Mailbox>,
    pub dkim: Option<DkimPolicy>,
    pub max_message_bytes: usize,
}

/// Compiles a source's `[email]` and `[[mailboxes]]`; errors are `(key, message)`.
pub fn compile(
    source: &str,
    email: &EmailFile,
    mailboxes: &[MailboxFile],
    templates: &Templates,
    errs: &mut Vec<(String, String)>,
) -> SourceEmail {
    if let Some(t) = &email.template
        && templates.get(t).is_none()
    {
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        errs.push((
            "email.template".into(),
            format!("no template named {t:?} (loaded: {})", names.join(", ")),
        ));
    }
    let dkim = email.dkim.as_ref().map(|d| {
        if d.domains.is_empty() {
            errs.push(("email.dkim.domains".into(), "name at least one signing domain".into()));
        }
        let mut keys = BTreeMap::new();
        for (name, record) in &d.keys {
            match DomainKey::parse(record.as_bytes()) {
                Ok(_) => {
                    keys.insert(name.trim().trim_end_matches('.').to_ascii_lowercase(), record.clone());
                }
                Err(e) => {
                    errs.push((format!("email.dkim.keys.{name:?}"), format!("not a DKIM key record: {e}")))
                }
            }
        }
        DkimPolicy {
            domains: d.domains.iter().map(|x| x.trim().trim_end_matches('.').to_ascii_lowercase()).collect(),
            keys: Arc::new(keys),
        }
    });
    let mut out = Vec::new();
    for (i, m) in mailboxes.iter().enumerate() {
        let key = |k: &str| format!("mailboxes[{i}].{k}");
        let host = m.host.as_str().trim().to_owned();
        if host.is_empty() {
            errs.push((key("host"), "empty host".into()));
        }
        if m.tls == Tls::None && !is_loopback(&host) {
            errs.push((
                key("tls"),
                format!("tls = \"none\" is only allowed for a loopback host, not {host:?}: use implicit or starttls"),
            ));
        }
        if m.password.as_str().is_empty() {
            errs.push((key("password"), "empty password".into()));
        } else if !m.password.from_env() {
            errs.push((key("password"), "write the password as an ${ENV} reference, not in the file".into()));
        }
        for (k, folder) in [("processed_folder", &m.processed_folder), ("failed_folder", &m.failed_folder)] {
            if folder.as_deref().is_some_and(|f| f == m.folder) {
                errs.push((key(k), format!("must differ from folder {:?}", m.folder)));
            }
        }
        if let Some(ca) = &m.ca_file
            && !ca.is_file()
        {
            errs.push((key("ca_file"), format!("{} is not a file", ca.display())));
        }
        if m.poll_interval < Duration::from_millis(50) {
            errs.push((key("poll_interval"), "at least 50ms".into()));
        }
        let port = m.port.unwrap_or(if m.tls == Tls::Implicit { 993 } else { 143 });
        let user = m.user.as_str().to_owned();
        let name = m.name.clone().unwrap_or_else(|| format!("{user}@{host}/{}", m.folder));
        let id = format!("{source}/{name}");
        if out.iter().any(|o: &Mailbox| o.id == id) {
            errs.push((key("name"), format!("mailbox {name:?} is listed twice")));
        }
        out.push(Mailbox {
            id,
            source: source.to_owned(),
            host,
            port,
            tls: m.tls,
            user,
            password: m.password.as_str().to_owned(),
            folder: m.folder.clone(),
            processed_folder: m.processed_folder.clone(),
            failed_folder: m.failed_folder.clone(),
            idle: m.idle,
            poll_interval: m.poll_interval,
            max_backoff: m.max_backoff.max(Duration::from_millis(100)),
            ca_file: m.ca_file.clone(),
        });
    }
    SourceEmail { mailboxes: out, dkim, max_message_bytes: email.max_message_bytes.max(1024) }
}

/// Gives a compiled source its e-mail settings: the templates and limits its parser
/// uses, its mailboxes and DKIM policy.
pub fn attach(
    source: &mut super::Source,
    file: &super::SourceFile,
    templates: &Arc<Templates>,
    errs: &mut Vec<(String, String)>,
) {
    let email = compile(&source.name, &file.email, &file.mailboxes, templates, errs);
    source.parse.email = crate::parse::email::EmailContext {
        templates: templates.clone(),
        template: file.email.template.clone(),
        limits: crate::parse::email::MimeLimits {
            max_bytes: email.max_message_bytes,
            ..crate::parse::email::MimeLimits::default()
        },
    };
    source.email = email;
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The shipped templates plus `<config>/parsers/*.toml` (which win by name). Problems
/// are reported with the file and line, like every other config file.
pub fn load_templates(config_dir: &Path, problems: &mut Vec<ConfigProblem>) -> Templates {
    let (shipped, bad) = Templates::shipped();
    for (name, ps) in bad {
        let file = Path::new("parsers").join(format!("{name}.toml"));
        problems.extend(ps.into_iter().map(|p| template_problem(&file, p)));
    }
    let operator = load_template_dir(&config_dir.join("parsers"), problems);
    Templates::new(operator, shipped)
}

/// Every template file of `dir` (none if it does not exist).
pub fn load_template_dir(dir: &Path, problems: &mut Vec<ConfigProblem>) -> Vec<Template> {
    let mut out = Vec::new();
    for path in files::toml_files(dir, problems) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(ConfigProblem {
                    file: path.clone(),
                    line: None,
                    column: None,
                    field: None,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        match Template::from_toml(&stem, &text, &path) {
            Ok(t) if out.iter().any(|o: &Template| o.name == t.name) => problems.push(ConfigProblem {
                file: path.clone(),
                line: None,
                column: None,
                field: Some("name".into()),
                message: format!("template {:?} is defined twice", t.name),
            }),
            Ok(t) => out.push(t),
            Err(ps) => problems.extend(ps.into_iter().map(|p| template_problem(&path, p))),
        }
    }
    out
}

fn template_problem(file: &Path, p: crate::parse::template::TemplateProblem) -> ConfigProblem {
    ConfigProblem {
        file: file.to_path_buf(),
        line: p.line,
        column: p.column,
        field: p.field,
        message: p.message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("imap.example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
