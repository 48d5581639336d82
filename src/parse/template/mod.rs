//! Vendor e-mail templates: TOML data files that say how to recognise a vendor's lead
//! e-mails and where each field sits. Shipped ones live in `parsers/` (compiled into the
//! binary); an operator's live in `<config>/parsers/` and win over a shipped one of the
//! same name.
//!
//! ```toml
//! description = "HomePros Network: labelled plain text"
//!
//! [match]                       # every condition given must hold
//! from = ["*@homepros.example"] # address globs, any of them
//! subject = "(?i)lead"          # regex on the decoded subject
//! # to = ["leads@*"]; headers = { "X-Vendor" = "^HomePros$" }
//!
//! [fields]                      # record name = where its value is
//! vendor_lead_id = { label = "Lead ID" }
//! full_name = { label = "Name", required = true }
//! city_state_zip = { label = "City/State/Zip", split = "city_state_zip" }
//! product = { label = "Project" }
//! comments = { label = ["Comments", "Message"], multiline = true }
//! property = { regex = 'interested in (?P<value>.+?) \(', in = "html" }
//!
//! [[attachments]]               # records from attachments, parsed by a format parser
//! filename = "*.xml"
//! format = "adf"
//!
//! [[tests]]                     # `leadgate parsers test` runs these
//! file = "samples/homepros.eml"
//! expect = { email = "jose.ibanez@example.com", phone = "+12145550147" }
//! ```
//!
//! Field names are what the normalizer maps: canonical names (`email`, `phone_2`,
//! `full_name` …), built-in aliases, or any other name (kept under `custom`). Values are
//! found by labelled lines (`Label: value`, indented continuation lines joined; with
//! `multiline`, every following non-label line), by HTML table rows (label cell → value
//! cell, a `mailto:`/`tel:` link preferred over text like "click here"), by `regex`
//! (the `value` group, else group 1, else the whole match; other named groups become
//! fields of their own), or as a constant `value`. `take` picks among several matches
//! (`first`, the default; `last`; `all`, joined by ", "); `split = "city_state_zip"` and
//! `pattern` (named groups) split a value into fields.

mod extract;
mod file;
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;

use super::Format;
use super::email::mime::Mail;
pub use file::TemplateFile;

/// One problem in a template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// Dotted key inside the file, when known.
    pub field: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl TemplateProblem {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), line: None, column: None, message: message.into() }
    }
}

/// Where a field's value is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Where {
    /// Text parts, then HTML parts (tables and text).
    Body,
    Text,
    Html,
    Subject,
    Header(String),
}

/// Which of several matches a field keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    First,
    Last,
    All,
}

/// A built-in splitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// "City, ST 12345" → `city`, `state`, `postal_code`.
    CityStateZip,
}

#[derive(Debug, Clone)]
struct FieldRule {
    name: String,
    labels: Vec<String>,
    regex: Option<Regex>,
    source: Where,
    multiline: bool,
    take: Take,
    split: Option<Split>,
    pattern: Option<Regex>,
    value: Option<String>,
    required: bool,
}

#[derive(Debug, Clone)]
struct AttachmentRule {
    filename: Option<String>,
    content_type: Option<String>,
    format: Format,
    required: bool,
}

/// A template's own test: a sample message and the lead fields it must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTest {
    /// Resolved against the template file's directory.
    pub file: PathBuf,
    /// Normalized lead fields (`email`, `custom.timeframe` …) → expected text.
    pub expect: Vec<(String, String)>,
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub description: Option<String>,
    /// The file it came from (`parsers/<name>.toml` for shipped ones).
    pub origin: PathBuf,
    from: Vec<String>,
    to: Vec<String>,
    subject: Option<Regex>,
    headers: Vec<(String, Regex)>,
    fields: Vec<FieldRule>,
    attachments: Vec<AttachmentRule>,
    pub tests: Vec<TemplateTest>,
}

/// The templates shipped in `parsers/`, compiled into the binary.
const SHIPPED: &[(&str, &str)] = &[
    ("autosite", include_str!("../../../parsers/autosite.toml")),
    ("homepros", include_str!("../../../parsers/homepros.toml")),
    ("rentfinder", include_str!("../../../parsers/rentfinder.toml")),
];

impl Template {
    /// Compiles a template from its TOML text. `name` is the file stem; `origin` the file
    /// (its directory resolves test sample paths).
    pub fn from_toml(name: &str, text: &str, origin: &Path) -> Result<Template, Vec<TemplateProblem>> {
        let file: TemplateFile = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => line_col(text, span.start),
                None => (None, None),
            };
            vec![TemplateProblem { field: None, line, column, message: e.message().trim().to_owned() }]
        })?;
        file::compile(name, file, origin)
    }

    /// Whether this template is for `mail`: every condition it sets holds.
    pub fn matches(&self, mail: &Mail) -> bool {
        let any_glob = |globs: &[String], addrs: &mut dyn Iterator<Item = &str>| {
            let addrs: Vec<&str> = addrs.collect();
            globs.iter().any(|g| addrs.iter().any(|a| glob(g, a)))
        };
        if !self.from.is_empty()
            && !any_glob(&self.from, &mut mail.from.iter().chain(&mail.sender).map(|a| a.address.as_str()))
        {
            return false;
        }
        if !self.to.is_empty()
            && !any_glob(&self.to, &mut mail.to.iter().chain(&mail.cc).map(|a| a.address.as_str()))
        {
            return false;
        }
        if let Some(re) = &self.subject
            && !re.is_match(&mail.subject)
        {
            return false;
        }
        self.headers.iter().all(|(name, re)| {
            mail.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && re.is_match(v))
        })
    }
}

/// A set of templates in matching order (operator's first, then shipped; by name within each).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    list: Vec<Arc<Template>>,
}

impl Templates {
    /// `operator` templates, then the shipped ones whose names they do not take.
    pub fn new(mut operator: Vec<Template>, shipped: Vec<Template>) -> Templates {
        operator.sort_by(|a, b| a.name.cmp(&b.name));
        let mut list: Vec<Arc<Template>> = operator.into_iter().map(Arc::new).collect();
        for t in shipped {
            if !list.iter().any(|o| o.name == t.name) {
                list.push(Arc::new(t));
            }
        }
        Templates { list }
    }

    /// The shipped templates. They are tested in CI, so a problem here is a build defect:
    /// it is reported, and the template left out, rather than stopping the gateway.
    pub fn shipped() -> (Vec<Template>, Vec<(String, Vec<TemplateProblem>)>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (name, text) in SHIPPED {
            let origin = PathBuf::from(format!("parsers/{name}.toml"));
            match Template::from_toml(name, text, &origin) {
                Ok(t) => ok.push(t),
                Err(p) => bad.push(((*name).to_owned(), p)),
            }
        }
        (ok, bad)
    }

    /// Only the shipped templates (what `leadgate parse` uses without a config tree).
    pub fn shipped_only() -> Templates {
        Templates::new(Vec::new(), Templates::shipped().0)
    }

    /// The first template whose conditions `mail` meets.
    pub fn find(&self, mail: &Mail) -> Option<&Arc<Template>> {
        self.list.iter().find(|t| t.matches(mail))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Template>> {
        self.list.iter().find(|t| t.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Template>> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Case-insensitive glob with `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

fn line_col(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

#[cfg(test)]
mod tests;
