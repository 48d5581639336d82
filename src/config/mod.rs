//! The config tree: `leadgate.toml`, `sources/*.toml` (and, later, buyers and routes).
//!
//! Files are strict (`deny_unknown_fields`), secrets are `${ENV}` references resolved at
//! load, and the whole tree is compiled into one immutable [`Config`] snapshot. Loading
//! collects *every* problem with its file and line, so `leadgate check` shows them all
//! at once and `serve` refuses to start with the same messages.

pub mod duration;
pub mod email;
pub mod env;
pub mod file_intake;
mod files;
pub mod reload;
pub mod routing;
pub mod vendors;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{KeyHash, Keyring, Principal};
use crate::dedupe;
use crate::lead::normalize::{Aliases, NormalizeOptions};
use crate::lead::validate::Rules;
use crate::parse::ParseContext;

pub use files::{MainFile, SourceFile};

/// The default SQLite database when neither flag, env nor file names one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/leadgate.db";

/// One problem in the config tree, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path inside the file, when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found while loading a tree.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct Server {
    pub listen: String,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: Option<String>,
    pub batch_max: usize,
    pub synchronous_full: bool,
}

/// A lead vendor, compiled from `sources/<name>.toml`.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// Relay dispositions back to the vendor (its transport is in `Config::deliveries`
    /// under [`closed_loop_target`]).
    pub closed_loop: Option<ClosedLoop>,
    pub enabled: bool,
    pub normalize: NormalizeOptions,
    pub parse: ParseContext,
    pub rules: Rules,
    pub dedupe: dedupe::Policy,
    /// File intake: FTP account, format, column mapping.
    pub files: file_intake::SourceFiles,
    /// IMAP mailboxes and DKIM policy.
    pub email: email::SourceEmail,
    /// The vendor endpoints this source has enabled, with their secrets.
    pub vendors: vendors::VendorSettings,
}

impl Source {
    /// A source with every default (no keys): what `leadgate parse` uses when the
    /// tree names none.
    pub fn with_defaults(name: &str) -> Source {
        let global = compile_dedupe(&files::DedupeFile::default()).unwrap_or(dedupe::Policy {
            sets: vec![],
            window: Duration::ZERO,
            scope: dedupe::Scope::Global,
        });
        let mut unused_keys = Keyring::default();
        let mut unused_warnings = Vec::new();
        compile_source(name, &SourceFile::default(), &global, &mut unused_keys, &mut unused_warnings)
            .unwrap_or(Source {
                name: name.to_string(),
                enabled: true,
                closed_loop: None,
                normalize: NormalizeOptions::default(),
                parse: ParseContext::default(),
                rules: Rules::default(),
                dedupe: global.clone(),
                files: file_intake::SourceFiles {
                    normalize: NormalizeOptions::default(),
                    format: None,
                    ftp: None,
                },
                email: email::SourceEmail::default(),
                vendors: vendors::VendorSettings::default(),
            })
    }

    /// Normalization settings for a payload format: file rows (CSV, XLSX, JSON lines,
    /// which is also how file chunks are stored) use the source's column mapping on top
    /// of its aliases.
    pub fn normalize_for(&self, format: crate::parse::Format) -> &NormalizeOptions {
        use crate::parse::Format;
        match format {
            Format::Csv | Format::Xlsx | Format::Jsonl => &self.files.normalize,
            _ => &self.normalize,
        }
    }
}

/// A source's closed-loop settings.
#[derive(Debug, Clone)]
pub struct ClosedLoop {
    pub url: String,
    pub events: Vec<crate::claim::DispositionKind>,
}

/// The outbox target name of a source's closed-loop relay.
pub fn closed_loop_target(source: &str) -> String {
    format!("source:{source}")
}

/// A compiled, validated config tree. Immutable: a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub server: Server,
    pub store: StoreSettings,
    pub log_json: bool,
    pub outbox: crate::deliver::outbox::OutboxSettings,
    pub keys: Keyring,
    /// `GET /metrics` answers loopback clients without a key (no `[metrics] keys` configured).
    pub metrics_keyless_loopback: bool,
    pub sources: BTreeMap<String, Arc<Source>>,
    /// Buyers, routes, scoring and templates.
    pub routing: crate::route::Routing,
    /// Each buyer's transport (webhook client, SMTP pool), by buyer name.
    pub deliveries: BTreeMap<String, routing::DeliveryHandle>,
    /// Vendor e-mail templates: `<config>/parsers/` over the shipped ones.
    pub templates: Arc<crate::parse::template::Templates>,
    /// Things that work but deserve the operator's attention (e.g. default example keys).
    pub warnings: Vec<String>,
    /// File intake: FTP drop, drop directory, processing settings.
    pub file_intake: file_intake::FileIntake,
}

impl Config {
    pub fn source(&self, name: &str) -> Option<&Arc<Source>> {
        self.sources.get(name)
    }

    /// Loads and compiles the tree under `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let main_path = dir.join("leadgate.toml");
        let main: MainFile = if main_path.exists() {
            files::read(&main_path, &mut problems).unwrap_or_default()
        } else {
            problems.push(problem(
                &main_path,
                None,
                format!("missing file (expected the main config in {})", dir.display()),
            ));
            MainFile::default()
        };

        let mut keys = Keyring::default();
        let mut warnings = Vec::new();
        for (i, k) in main.admin.keys.iter().enumerate() {
            match KeyHash::from_config(k) {
                Ok(h) => keys.add(h, Principal::Admin),
                Err(e) => problems.push(problem(&main_path, Some(format!("admin.keys[{i}]")), e)),
            }
            if let Some(var) = k.defaulted_var() {
                warnings.push(format!("The admin key is the example default: set {var}."));
            }
        }
        for (i, k) in main.metrics.keys.iter().enumerate() {
            match KeyHash::from_config(k) {
                Ok(h) => keys.add(h, Principal::Metrics),
                Err(e) => problems.push(problem(&main_path, Some(format!("metrics.keys[{i}]")), e)),
            }
            if let Some(var) = k.defaulted_var() {
                warnings.push(format!("The metrics key is the example default: set {var}."));
            }
        }

        let global_dedupe = compile_dedupe(&main.dedupe).unwrap_or_else(|e| {
            problems.push(problem(&main_path, Some("dedupe".into()), e));
            dedupe::Policy { sets: vec![], window: Duration::ZERO, scope: dedupe::Scope::Global }
        });

        let templates = Arc::new(email::load_templates(dir, &mut problems));
        let mut sources = BTreeMap::new();
        let source_dir = dir.join("sources");
        let mut closed_loops = Vec::new();
        for path in files::toml_files(&source_dir, &mut problems) {
            let Some(file) = files::read::<SourceFile>(&path, &mut problems) else {
                continue;
            };
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let name = file.name.clone().unwrap_or(stem);
            if !valid_name(&name) {
                problems.push(problem(
                    &path,
                    Some("name".into()),
                    format!("invalid source name {name:?}: use lowercase letters, digits, '-' and '_'"),
                ));
                continue;
            }
            if sources.contains_key(&name) {
                problems.push(problem(
                    &path,
                    Some("name".into()),
                    format!("source {name:?} is defined twice"),
                ));
                continue;
            }
            if let Some(cl) = &file.closed_loop {
                match routing::closed_loop_delivery(cl) {
                    Ok(d) => closed_loops.push((closed_loop_target(&name), d)),
                    Err(errs) => problems.extend(errs.into_iter().map(|(f, m)| problem(&path, Some(f), m))),
                }
            }
            match compile_source(&name, &file, &global_dedupe, &mut keys, &mut warnings) {
                Ok(mut src) => {
                    let mut errs = Vec::new();
                    email::attach(&mut src, &file, &templates, &mut errs);
                    if errs.is_empty() {
                        sources.insert(name, Arc::new(src));
                    } else {
                        problems
                            .extend(errs.into_iter().map(|(field, msg)| problem(&path, Some(field), msg)));
                    }
                }
                Err(errs) => {
                    problems.extend(errs.into_iter().map(|(field, msg)| problem(&path, Some(field), msg)))
                }
            }
        }

        let (routing, mut deliveries) = routing::load(dir, &mut problems, &mut keys, &mut warnings);
        deliveries.extend(closed_loops);

        let mut intake_problems = Vec::new();
        let file_intake = file_intake::compile(&main.files, &main.ftp, &main.drop_dir, &mut intake_problems);
        problems
            .extend(intake_problems.into_iter().map(|(field, msg)| problem(&main_path, Some(field), msg)));
        let mut ftp_users: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, src) in &sources {
            if let Some(account) = &src.files.ftp
                && let Some(other) = ftp_users.insert(&account.user, name)
            {
                problems.push(problem(
                    &source_dir.join(format!("{name}.toml")),
                    Some("ftp.user".into()),
                    format!("FTP user {:?} is also the user of source {other}", account.user),
                ));
            }
        }
        if file_intake.ftp.is_some() && ftp_users.is_empty() {
            warnings.push("The FTP drop is enabled but no source has an [ftp] account.".into());
        }

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Config {
            dir: dir.to_path_buf(),
            server: Server {
                listen: main.server.listen.as_str().to_string(),
                max_body_bytes: main.server.max_body_bytes,
                request_timeout: main.server.request_timeout,
                shutdown_grace: main.server.shutdown_grace,
            },
            store: StoreSettings {
                url: main.store.url.as_ref().map(|u| u.as_str().to_string()),
                batch_max: main.store.batch_max.clamp(1, 4096),
                synchronous_full: main.store.synchronous != files::Synchronous::Normal,
            },
            log_json: main.log.format == files::LogFormat::Json,
            outbox: crate::deliver::outbox::OutboxSettings {
                lease: main.outbox.lease,
                concurrency: main.outbox.concurrency.clamp(1, 4096),
                poll: main.outbox.poll,
            },
            keys,
            metrics_keyless_loopback: main.metrics.keys.is_empty(),
            sources,
            routing,
            deliveries,
            templates,
            warnings,
            file_intake,
        })
    }
}

fn problem(file: &Path, field: Option<String>, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem { file: file.to_path_buf(), line: None, column: None, field, message: message.into() }
}

/// Source and buyer names appear in URLs and CLI flags: keep them plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn compile_dedupe(file: &files::DedupeFile) -> Result<dedupe::Policy, String> {
    dedupe::Policy::new(file.keys.clone(), file.window, file.scope)
}

fn compile_source(
    name: &str,
    file: &SourceFile,
    global_dedupe: &dedupe::Policy,
    keys: &mut Keyring,
    warnings: &mut Vec<String>,
) -> Result<Source, Vec<(String, String)>> {
    let mut errs = Vec::new();
    for (i, k) in file.keys.iter().enumerate() {
        match KeyHash::from_config(k) {
            Ok(h) => keys.add(h, Principal::Source(name.to_string())),
            Err(e) => errs.push((format!("keys[{i}]"), e)),
        }
        if let Some(var) = k.defaulted_var() {
            warnings.push(format!("Source {name} accepts the example default key: set {var}."));
        }
    }
    let region = file.default_region.trim().to_ascii_uppercase();
    if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
        errs.push(("default_region".into(), format!("{region:?} is not an ISO 3166 alpha-2 code")));
    }
    let aliases = Aliases::with_overrides(&file.aliases).unwrap_or_else(|e| {
        errs.push(("aliases".into(), e));
        Aliases::default()
    });
    let rules = Rules::parse(&file.validate.required).unwrap_or_else(|e| {
        errs.push(("validate.required".into(), e));
        Rules::default()
    });
    let dedupe = match &file.dedupe {
        None => global_dedupe.clone(),
        Some(d) => compile_dedupe(d).unwrap_or_else(|e| {
            errs.push(("dedupe".into(), e));
            global_dedupe.clone()
        }),
    };
    for (path, target) in &file.xml.paths {
        if !crate::lead::validate::is_field_name(target)
            && target != "full_name"
            && !target.starts_with("consent")
        {
            errs.push((format!("xml.paths.{path:?}"), format!("unknown target field {target:?}")));
        }
    }
    let normalize = NormalizeOptions {
        default_region: region.clone(),
        aliases: aliases.clone(),
        lowercase_email_local: file.lowercase_email_local,
    };
    let (files, table) =
        file_intake::compile_source(file.ftp.as_ref(), &file.files, &file.aliases, &normalize, &mut errs);
    if let Some(var) = file.ftp.as_ref().and_then(|f| f.password.defaulted_var()) {
        warnings.push(format!("Source {name} accepts the example default FTP password: set {var}."));
    }
    let vendor_files = vendors::VendorFiles {
        google_ads: file.google_ads.as_ref(),
        meta: file.meta.as_ref(),
        hubspot: file.hubspot.as_ref(),
        web_to_lead: file.web_to_lead.as_ref(),
        leadconduit: file.leadconduit.as_ref(),
    };
    let vendor_settings = vendors::compile(&vendor_files, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Source {
        name: name.to_string(),
        enabled: file.enabled,
        closed_loop: file
            .closed_loop
            .as_ref()
            .map(|c| ClosedLoop { url: c.url.as_str().to_string(), events: c.events.clone() }),
        normalize,
        parse: ParseContext {
            xml_paths: file.xml.paths.clone(),
            xml_record: file.xml.record.clone(),
            table,
            vendors: crate::parse::vendors::VendorOptions {
                web_to_lead_fields: file.web_to_lead.as_ref().map(|w| w.fields.clone()).unwrap_or_default(),
                hubspot_date_fields: file.hubspot.as_ref().map(|h| h.date_fields.clone()).unwrap_or_default(),
            },
            ..ParseContext::default()
        },
        rules,
        dedupe,
        files,
        email: email::SourceEmail::default(),
        vendors: vendor_settings,
    })
}
