//! Config for file intake: `[files]`, `[ftp]` and `[drop_dir]` in `leadgate.toml`, and a
//! source's `[ftp]` account and `[files]` settings.
//!
//! FTP accounts: one per source, the user name unique across sources. The password is
//! either an Argon2 PHC string (`$argon2id$…`, printed by `leadgate keys ftp-password`) or
//! an `${ENV}` reference, whose value is kept only as a SHA-256 digest and compared in
//! constant time. A plaintext password written in a file is refused, as API keys are.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::duration;
use super::env::EnvString;
use crate::lead::normalize::{Aliases, NormalizeOptions};
use crate::parse::Format;
use crate::parse::table::TableOptions;

/// `[files]` in `leadgate.toml`: how files are processed, whatever brought them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesFile {
    /// Where files are kept while being processed, out of every vendor's reach.
    pub work_dir: EnvString,
    /// Where processed files are archived: `<archive_dir>/<source>/<YYYY-MM-DD>/…`.
    pub archive_dir: EnvString,
    /// Rows per chunk; each chunk is one submission, committed in one transaction.
    pub chunk_rows: usize,
    /// Most rows read from one file.
    pub max_rows: u64,
    /// Largest file accepted (FTP answers 552 above it).
    pub max_file_bytes: u64,
    /// Largest XML or JSON file: those are parsed whole, in memory.
    pub max_document_bytes: u64,
}

impl Default for FilesFile {
    fn default() -> Self {
        Self {
            work_dir: EnvString::literal("data/files/work"),
            archive_dir: EnvString::literal("data/files/archive"),
            chunk_rows: 1000,
            max_rows: 2_000_000,
            max_file_bytes: 512 * 1024 * 1024,
            max_document_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[ftp]` in `leadgate.toml`: the embedded FTP(S) server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpFile {
    pub enabled: bool,
    /// Control connection address.
    pub listen: EnvString,
    /// Vendor home directories: `<root>/<source>/`.
    pub root: EnvString,
    /// PEM certificate chain and private key for explicit FTPS (AUTH TLS).
    pub tls_cert: Option<EnvString>,
    pub tls_key: Option<EnvString>,
    /// Allow plain FTP (no TLS). Only for loopback or a private network you trust.
    pub allow_plain: bool,
    /// Passive data ports, inclusive: `[first, last]`.
    pub passive_ports: [u16; 2],
    /// The IPv4 address announced in PASV replies (behind NAT); default: the address the
    /// client connected to.
    pub passive_host: Option<Ipv4Addr>,
    /// A control connection idle this long is closed.
    #[serde(deserialize_with = "duration::de")]
    pub idle_timeout: Duration,
}

impl Default for FtpFile {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: EnvString::literal("127.0.0.1:2121"),
            root: EnvString::literal("data/ftp"),
            tls_cert: None,
            tls_key: None,
            allow_plain: false,
            passive_ports: [50000, 50100],
            passive_host: None,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// `[drop_dir]` in `leadgate.toml`: a watched directory per source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropDirFile {
    pub enabled: bool,
    /// Drop directories: `<root>/<source>/`.
    pub root: EnvString,
    /// A file is complete when its size and modification time have not changed for this long.
    #[serde(deserialize_with = "duration::de")]
    pub settle: Duration,
    /// Rescan interval, besides file-system events.
    #[serde(deserialize_with = "duration::de")]
    pub poll: Duration,
}

impl Default for DropDirFile {
    fn default() -> Self {
        Self {
            enabled: false,
            root: EnvString::literal("data/drop"),
            settle: Duration::from_secs(2),
            poll: Duration::from_secs(5),
        }
    }
}

/// A source's `[ftp]` account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFtpFile {
    pub user: String,
    /// `$argon2id$…` or an `${ENV}` reference.
    pub password: EnvString,
}

/// A source's `[files]` settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceFilesFile {
    /// `csv`, `xlsx`, `xml`, `jsonl` or `json`; default: by file extension.
    pub format: Option<String>,
    /// XLSX: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// CSV: one character; default: detected.
    pub delimiter: Option<String>,
    /// CSV/JSON lines: an encoding label (`utf-8`, `windows-1252`, `utf-16le`); default: detected.
    pub encoding: Option<String>,
    /// The first row names the columns (default true); without it, columns are A, B, C…
    pub header: Option<bool>,
    /// Column (header name or letter) → canonical field, for files only, on top of `[aliases]`.
    pub columns: BTreeMap<String, String>,
}

/// How file intake runs, compiled.
#[derive(Debug, Clone)]
pub struct FileIntake {
    pub files: FileSettings,
    pub ftp: Option<FtpSettings>,
    pub drop_dir: Option<DropDirSettings>,
}

#[derive(Debug, Clone)]
pub struct FileSettings {
    pub work_dir: PathBuf,
    pub archive_dir: PathBuf,
    pub chunk_rows: usize,
    pub max_rows: u64,
    pub max_file_bytes: u64,
    pub max_document_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct FtpSettings {
    pub listen: String,
    pub root: PathBuf,
    /// Certificate chain and key (PEM); `None` only when `allow_plain`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plain: bool,
    pub passive_ports: RangeInclusive<u16>,
    pub passive_host: Option<Ipv4Addr>,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DropDirSettings {
    pub root: PathBuf,
    pub settle: Duration,
    pub poll: Duration,
}

/// A source's file settings, compiled.
#[derive(Debug, Clone)]
pub struct SourceFiles {
    /// Normalization of file rows: the source's aliases plus its column mapping.
    pub normalize: NormalizeOptions,
    /// Forced format; `None` means by extension.
    pub format: Option<Format>,
    pub ftp: Option<FtpAccount>,
}

/// An FTP login.
#[derive(Debug, Clone)]
pub struct FtpAccount {
    pub user: String,
    pub password: Password,
}

/// How a password is checked.
#[derive(Clone)]
pub enum Password {
    /// An Argon2 PHC string.
    Argon2(String),
    /// SHA-256 of a password from the environment.
    Sha256([u8; 32]),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::Argon2(_) => f.write_str("Password::Argon2(…)"),
            Password::Sha256(_) => f.write_str("Password::Sha256(…)"),
        }
    }
}

impl Password {
    /// Checks `given`. Argon2 is deliberately slow: call this off the async threads.
    pub fn verify(&self, given: &str) -> bool {
        match self {
            Password::Sha256(want) => {
                let got: [u8; 32] = Sha256::digest(given.as_bytes()).into();
                bool::from(got.ct_eq(want))
            }
            Password::Argon2(phc) => {
                use argon2::password_hash::PasswordVerifier as _;
                match argon2::password_hash::phc::PasswordHash::new(phc) {
                    Ok(hash) => argon2::Argon2::default().verify_password(given.as_bytes(), &hash).is_ok(),
                    Err(_) => false,
                }
            }
        }
    }
}

/// An Argon2id PHC string for `password` (for `leadgate keys ftp-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher as _;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Compiles the main file's sections; problems are `(field, message)`.
pub fn compile(
    files: &FilesFile,
    ftp: &FtpFile,
    drop_dir: &DropDirFile,
    problems: &mut Vec<(String, String)>,
) -> FileIntake {
    if !(1..=10_000).contains(&files.chunk_rows) {
        problems.push(("files.chunk_rows".into(), "must be between 1 and 10000".into()));
    }
    let settings = FileSettings {
        work_dir: PathBuf::from(files.work_dir.as_str()),
        archive_dir: PathBuf::from(files.archive_dir.as_str()),
        chunk_rows: files.chunk_rows.clamp(1, 10_000),
        max_rows: files.max_rows.max(1),
        max_file_bytes: files.max_file_bytes.max(1),
        max_document_bytes: files.max_document_bytes.max(1),
    };
    let ftp = ftp.enabled.then(|| {
        let tls = match (&ftp.tls_cert, &ftp.tls_key) {
            (Some(c), Some(k)) => Some((PathBuf::from(c.as_str()), PathBuf::from(k.as_str()))),
            (None, None) => None,
            _ => {
                problems.push(("ftp.tls_key".into(), "tls_cert and tls_key go together".into()));
                None
            }
        };
        if tls.is_none() && !ftp.allow_plain {
            problems.push((
                "ftp".into(),
                "set tls_cert and tls_key for FTPS, or allow_plain = true to accept plain FTP \
                 (only on loopback or a network you trust)"
                    .into(),
            ));
        }
        if let Some((cert, key)) = &tls {
            for (name, path) in [("ftp.tls_cert", cert), ("ftp.tls_key", key)] {
                if !path.is_file() {
                    problems.push((name.into(), format!("cannot read {}", path.display())));
                }
            }
        }
        let [first, last] = ftp.passive_ports;
        if first == 0 || first > last {
            problems
                .push(("ftp.passive_ports".into(), "must be [first, last] with 0 < first <= last".into()));
        }
        if ftp.listen.as_str().parse::<std::net::SocketAddr>().is_err() {
            problems
                .push(("ftp.listen".into(), format!("{:?} is not an IP:port address", ftp.listen.as_str())));
        }
        FtpSettings {
            listen: ftp.listen.as_str().to_owned(),
            root: PathBuf::from(ftp.root.as_str()),
            tls,
            allow_plain: ftp.allow_plain,
            passive_ports: first.max(1)..=last.max(first.max(1)),
            passive_host: ftp.passive_host,
            idle_timeout: ftp.idle_timeout,
        }
    });
    let drop_dir = drop_dir.enabled.then(|| DropDirSettings {
        root: PathBuf::from(drop_dir.root.as_str()),
        settle: drop_dir.settle,
        poll: drop_dir.poll.max(Duration::from_millis(50)),
    });
    FileIntake { files: settings, ftp, drop_dir }
}

/// Compiles a source's `[ftp]` and `[files]`, and its file-row table options.
pub fn compile_source(
    ftp: Option<&SourceFtpFile>,
    files: &SourceFilesFile,
    aliases: &BTreeMap<String, String>,
    base: &NormalizeOptions,
    errs: &mut Vec<(String, String)>,
) -> (SourceFiles, TableOptions) {
    let mut merged = aliases.clone();
    merged.extend(files.columns.iter().map(|(k, v)| (k.clone(), v.clone())));
    let file_aliases = Aliases::with_overrides(&merged).unwrap_or_else(|e| {
        errs.push(("files.columns".into(), e));
        base.aliases.clone()
    });
    let format = files.format.as_deref().and_then(|f| match Format::from_name(f.trim()) {
        Some(fmt @ (Format::Csv | Format::Xlsx | Format::Xml | Format::Jsonl | Format::Json)) => Some(fmt),
        _ => {
            errs.push(("files.format".into(), format!("{f:?} is not one of csv, xlsx, xml, jsonl, json")));
            None
        }
    });
    let delimiter = files.delimiter.as_deref().and_then(|d| {
        let d = if d == "\\t" || d.eq_ignore_ascii_case("tab") { "\t" } else { d };
        match d.as_bytes() {
            [b] if b.is_ascii() && *b != b'"' && *b != b'\n' && *b != b'\r' => Some(*b),
            _ => {
                errs.push(("files.delimiter".into(), format!("{d:?} is not a single ASCII character")));
                None
            }
        }
    });
    if let Some(label) = &files.encoding
        && encoding_rs::Encoding::for_label(label.trim().as_bytes()).is_none()
    {
        errs.push(("files.encoding".into(), format!("unknown encoding {label:?}")));
    }
    let ftp = ftp.and_then(|f| {
        let user = f.user.trim();
        if user.is_empty() || user.len() > 64 || !user.bytes().all(|b| b.is_ascii_graphic()) {
            errs.push(("ftp.user".into(), "must be 1 to 64 visible ASCII characters".into()));
            return None;
        }
        let password = if f.password.from_env() {
            if f.password.as_str().len() < 8 {
                errs.push(("ftp.password".into(), "a password from the environment must be at least 8 characters".into()));
                return None;
            }
            Password::Sha256(Sha256::digest(f.password.as_str().as_bytes()).into())
        } else if f.password.as_str().starts_with("$argon2") {
            if argon2::password_hash::phc::PasswordHash::new(f.password.as_str()).is_err() {
                errs.push(("ftp.password".into(), "not a valid Argon2 PHC string".into()));
                return None;
            }
            Password::Argon2(f.password.as_str().to_owned())
        } else {
            errs.push((
                "ftp.password".into(),
                "write an Argon2 hash (`leadgate keys ftp-password`) or an `${ENV}` reference, never the password itself"
                    .into(),
            ));
            return None;
        };
        Some(FtpAccount { user: user.to_owned(), password })
    });
    let files_compiled =
        SourceFiles { normalize: NormalizeOptions { aliases: file_aliases, ..base.clone() }, format, ftp };
    let table = TableOptions {
        delimiter,
        encoding: files.encoding.clone(),
        sheet: files.sheet.clone(),
        header: files.header.unwrap_or(true),
    };
    (files_compiled, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let p = Password::Sha256(Sha256::digest(b"secret-pw").into());
        assert!(p.verify("secret-pw"));
        assert!(!p.verify("secret-px"));
        let phc = hash_password("hunter42").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        let p = Password::Argon2(phc);
        assert!(p.verify("hunter42"));
        assert!(!p.verify("hunter43"));
    }

    #[test]
    fn plaintext_passwords_and_bad_settings_are_refused() {
        let ftp = SourceFtpFile { user: "acme".into(), password: EnvString::literal("hunter42") };
        let files = SourceFilesFile {
            delimiter: Some(";;".into()),
            format: Some("pdf".into()),
            encoding: Some("klingon".into()),
            ..SourceFilesFile::default()
        };
        let mut errs = Vec::new();
        compile_source(Some(&ftp), &files, &BTreeMap::new(), &NormalizeOptions::default(), &mut errs);
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["files.format", "files.delimiter", "files.encoding", "ftp.password"]);
    }
}
