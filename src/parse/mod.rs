//! Parsers: raw submission bytes → records (field name → value, as the vendor wrote them).
//!
//! Parsers are sync, pure and bounded so they can be fuzzed: they never panic, never
//! expand XML entities, and refuse input beyond their limits with a [`ParseError`] that
//! names the problem (and line/column where the format has them).

pub mod adf;
pub mod csv;
pub mod decode;
pub mod email;
pub mod form;
pub mod json;
pub mod jsonl;
pub mod table;
pub mod template;
pub mod vendors;
pub mod xlsx;
pub mod xml;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// One lead as a parser produced it: `(name, value)` pairs in document order.
///
/// Names are the vendor's (nested JSON objects flattened with `.`, XML leaf element names
/// or mapped canonical names); values are JSON values (strings, numbers, booleans, arrays).
pub type Record = Vec<(String, Value)>;

/// What a parser made of one payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParseOutput {
    pub records: Vec<Record>,
    /// The payload was a batch (JSON array, XML list): the answer lists one result each.
    pub batch: bool,
}

/// Why a payload could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), line: None, column: None }
    }

    pub fn at(message: impl Into<String>, line: u64, column: u64) -> Self {
        Self { message: message.into(), line: Some(line), column: Some(column) }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{} at line {l}, column {c}", self.message),
            (Some(l), None) => write!(f, "{} at line {l}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Payload formats known to the pipeline. The name is what `--format` and configs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Json,
    Form,
    Xml,
    /// A whole RFC 5322 message (IMAP intake, `.eml` files): see [`email`].
    Email,
    /// ADF/XML 1.0 auto leads: see [`adf`].
    Adf,
    /// Google Ads lead-form webhook body.
    GoogleAds,
    /// A Meta Lead Ads lead object, as the Graph API returns it.
    MetaLead,
    /// A Meta Lead Ads webhook notification (ids only: it yields no lead itself).
    MetaNotification,
    /// HubSpot Forms API v3 submission body.
    Hubspot,
    /// Salesforce Web-to-Lead form post.
    WebToLead,
    /// LeadConduit-style post (form, JSON or XML).
    Leadconduit,
    /// Delimited text with a header row (file intake).
    Csv,
    /// Excel workbook, one sheet (file intake).
    Xlsx,
    /// One JSON object per line (file intake, and the body of file chunks).
    Jsonl,
}

impl Format {
    pub const ALL: &'static [Format] = &[
        Format::Json,
        Format::Form,
        Format::Xml,
        Format::Email,
        Format::Adf,
        Format::GoogleAds,
        Format::MetaLead,
        Format::MetaNotification,
        Format::Hubspot,
        Format::WebToLead,
        Format::Leadconduit,
        Format::Csv,
        Format::Xlsx,
        Format::Jsonl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Form => "form",
            Format::Xml => "xml",
            Format::Email => "email",
            Format::Adf => "adf",
            Format::GoogleAds => "google-ads",
            Format::MetaLead => "meta-lead",
            Format::MetaNotification => "meta-notification",
            Format::Hubspot => "hubspot",
            Format::WebToLead => "web-to-lead",
            Format::Leadconduit => "leadconduit",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Jsonl => "jsonl",
        }
    }

    /// The format a file name's extension announces (`leads.CSV` → CSV), for file intake.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "xml" => Some(Format::Xml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The format of a file handed to `leadgate parse` without `--format`: by extension
    /// (`.eml` e-mail, `.xml` ADF or generic XML by its root, `.csv`, `.xlsx`, `.jsonl`,
    /// `.json`), else by content where it is unambiguous (a message's header lines, ADF, XML,
    /// JSON, form pairs). Vendor shapes (`google-ads`, `meta-lead`, …) are never guessed.
    pub fn infer(file_name: Option<&str>, body: &[u8]) -> Option<Format> {
        let ext = file_name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
        let by_content = || {
            if looks_like_message(body) {
                return Some(Format::Email);
            }
            match sniff(body)? {
                Format::Xml if looks_like_adf(body) => Some(Format::Adf),
                f => Some(f),
            }
        };
        match ext.as_deref() {
            Some("eml") => Some(Format::Email),
            Some("xml") if looks_like_adf(body) => Some(Format::Adf),
            // `.txt` is CSV for file intake, but a form post or a message saved as text too.
            Some("txt") => by_content().filter(|f| *f != Format::Json).or(Some(Format::Csv)),
            Some(e) => Format::from_file_name(&format!("f.{e}")).or_else(by_content),
            None => by_content(),
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The format a `Content-Type` header announces, if it is one we accept.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/x-www-form-urlencoded" => Some(Format::Form),
            "application/xml" | "text/xml" => Some(Format::Xml),
            "message/rfc822" => Some(Format::Email),
            "application/vnd.adf+xml" => Some(Format::Adf),
            e if e.starts_with("application/") && e.ends_with("+json") => Some(Format::Json),
            e if e.starts_with("application/") && e.ends_with("+xml") => Some(Format::Xml),
            _ => None,
        }
    }
}

/// Per-source parser settings and global limits.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// XML: element path (`lead/contact/first_name`, from the root) → target field name.
    pub xml_paths: BTreeMap<String, String>,
    /// XML: name of the repeated record element of a batch document, if not guessed.
    pub xml_record: Option<String>,
    /// Deepest element/object nesting accepted.
    pub max_depth: usize,
    /// Most records in one payload.
    pub max_records: usize,
    /// Most attributes on one XML element.
    pub max_attributes: usize,
    /// E-mail: templates, the pinned template and MIME limits.
    pub email: email::EmailContext,
    /// Settings of the vendor formats (Web-to-Lead field ids, HubSpot date fields).
    pub vendors: vendors::VendorOptions,
    /// CSV and XLSX settings (delimiter, encoding, sheet, header row).
    pub table: table::TableOptions,
}

impl Default for ParseContext {
    fn default() -> Self {
        Self {
            xml_paths: BTreeMap::new(),
            xml_record: None,
            max_depth: 32,
            max_records: 10_000,
            max_attributes: 64,
            email: email::EmailContext::default(),
            vendors: vendors::VendorOptions::default(),
            table: table::TableOptions::default(),
        }
    }
}

/// Parses `raw` in `format`. For the generic formats, first checks that the body looks
/// like the announced format, so a mislabelled body is refused by name rather than parsed
/// into an empty lead (vendor formats check their own shape).
pub fn parse(format: Format, raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    // File formats are chosen by name or config, never sniffed (a CSV cell or a JSON
    // line would fool the sniffer).
    match format {
        Format::Csv => return csv::parse(raw, cx),
        Format::Xlsx => return xlsx::parse(raw, cx),
        Format::Jsonl => return jsonl::parse(raw, cx),
        _ => {}
    }
    if !matches!(format, Format::Json | Format::Form | Format::Xml | Format::Email | Format::Adf) {
        return vendors::parse(format, raw, cx);
    }
    // A message is not sniffed (its headers look like nothing else), and ADF is XML.
    if let Some(actual) = sniff(raw)
        && actual != format
        && format != Format::Email
        && !(format == Format::Adf && actual == Format::Xml)
    {
        return Err(ParseError::new(format!(
            "the body looks like {} but was sent as {}",
            actual.describe(),
            format.describe()
        )));
    }
    match format {
        Format::Json => json::parse(raw, cx),
        Format::Form => form::parse(raw, cx),
        Format::Xml => xml::parse(raw, cx),
        Format::Email => email::parse(raw, cx),
        Format::Adf => adf::parse(raw, cx),
        _ => vendors::parse(format, raw, cx),
    }
}

impl Format {
    fn describe(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Form => "form name-value pairs",
            Format::Xml => "XML",
            Format::Email => "an e-mail message",
            Format::Adf => "ADF/XML",
            Format::GoogleAds => "a Google Ads lead",
            Format::MetaLead => "a Meta lead",
            Format::MetaNotification => "a Meta notification",
            Format::Hubspot => "a HubSpot submission",
            Format::WebToLead => "a Web-to-Lead post",
            Format::Leadconduit => "a LeadConduit post",
            Format::Csv => "CSV",
            Format::Xlsx => "an XLSX workbook",
            Format::Jsonl => "JSON lines",
        }
    }
}

/// The field name under which a parser reports a row it could not read at all (a JSON
/// line that is not JSON): such a record holds only this entry, whose value is the
/// message. The pipeline turns it into a rejected lead naming the problem, so the row
/// keeps its place (and a lead id) in the file's answer and the rest of the file goes on.
pub const ROW_ERROR: &str = "!row_error";

/// The field name under which a parser says a lead must be held for an operator's review
/// (template-free e-mail extraction whose contact fields are all guesses); its value is
/// the reason. The pipeline takes it out of the record before normalizing.
pub const REVIEW: &str = "!review";

/// The review reason a record carries, if any (see [`REVIEW`]).
pub fn review(record: &Record) -> Option<&str> {
    record.iter().rev().find_map(|(name, v)| match v {
        Value::String(reason) if name == REVIEW => Some(reason.as_str()),
        _ => None,
    })
}

/// The record without its [`REVIEW`] marker.
pub fn without_review(record: &Record) -> Record {
    record.iter().filter(|(name, _)| name != REVIEW).cloned().collect()
}

/// The record standing for an unreadable row.
pub fn row_error_record(message: impl Into<String>) -> Record {
    vec![(ROW_ERROR.to_owned(), Value::String(message.into()))]
}

/// The message of a record made by [`row_error_record`], if it is one.
pub fn row_error(record: &Record) -> Option<&str> {
    match record.first() {
        Some((name, Value::String(message))) if name == ROW_ERROR => Some(message),
        _ => None,
    }
}

/// Guesses a body's format from its first meaningful byte (`{`/`[` JSON, `<` XML,
/// `name=` form). `None` when it cannot tell.
pub fn sniff(raw: &[u8]) -> Option<Format> {
    let body = strip_bom(raw);
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace())?;
    match first {
        b'{' | b'[' => Some(Format::Json),
        b'<' => Some(Format::Xml),
        b if b.is_ascii_alphanumeric() || b == b'_' || b == b'%' => {
            let head = &body[..body.len().min(256)];
            let eq = head.iter().position(|&b| b == b'=')?;
            let name_ok = head[..eq].iter().all(|&b| b.is_ascii_alphanumeric() || b"_.-%[]+".contains(&b));
            name_ok.then_some(Format::Form)
        }
        _ => None,
    }
}

/// An XML document whose root is `<adf>` (after the declaration and comments).
fn looks_like_adf(body: &[u8]) -> bool {
    let body = strip_bom(body);
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    let mut rest = head.trim_start();
    while let Some(after) = rest.strip_prefix("<?").or_else(|| rest.strip_prefix("<!--")) {
        let end = if rest.starts_with("<?") { "?>" } else { "-->" };
        match after.find(end) {
            Some(i) => rest = after[i + end.len()..].trim_start(),
            None => return false,
        }
    }
    rest.strip_prefix("<adf").is_some_and(|r| r.starts_with(['>', ' ', '\t', '\r', '\n', '/']))
}

/// An RFC 5322 message: it opens with header lines (`Name: value`), one of them a header
/// every message has (`From`, `Date`, `Received`, `Message-ID`, …).
fn looks_like_message(body: &[u8]) -> bool {
    const HEADERS: &[&str] =
        &["from", "date", "received", "message-id", "return-path", "delivered-to", "mime-version", "subject"];
    let body = strip_bom(body);
    let head = String::from_utf8_lossy(&body[..body.len().min(8192)]).into_owned();
    let mut known = false;
    for line in head.lines().take_while(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            continue; // a folded header
        }
        let Some((name, _)) = line.split_once(':') else { return false };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        known |= HEADERS.contains(&name.to_ascii_lowercase().as_str());
    }
    known
}

/// Drops a UTF-8 byte-order mark, which spreadsheet and Windows tools put in front.
pub fn strip_bom(raw: &[u8]) -> &[u8] {
    raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
}

/// Flattens a JSON object into dotted `(name, value)` pairs; arrays stay values.
pub fn flatten_object(prefix: &str, obj: &serde_json::Map<String, Value>, out: &mut Record) {
    for (k, v) in obj {
        let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten_object(&name, inner, out),
            other => out.push((name, other.clone())),
        }
    }
}

#[cfg(test)]
mod infer_tests {
    use super::Format;

    #[test]
    fn the_format_comes_from_the_extension_then_the_content() {
        let adf = b"<?xml version=\"1.0\"?>\r\n<!-- x -->\n<ADF><prospect/></ADF>";
        let mail = b"Received: by x\r\n\tfolded\r\nFrom: a@b.example\r\nSubject: a=b\r\n\r\nbody";
        let cases: [(Option<&str>, &[u8], Option<Format>); 13] = [
            (Some("lead.eml"), b"", Some(Format::Email)),
            (Some("a.XML"), adf, Some(Format::Adf)),
            (Some("a.xml"), b"<leads><lead/></leads>", Some(Format::Xml)),
            (Some("a.adfxml"), b"<adf >", Some(Format::Adf)),
            (Some("a.csv"), b"{", Some(Format::Csv)),
            (Some("a.xlsx"), b"PK", Some(Format::Xlsx)),
            (Some("a.ndjson"), b"{}", Some(Format::Jsonl)),
            (Some("a.json"), b"[]", Some(Format::Json)),
            (Some("post.txt"), b"first_name=Lee&email=x", Some(Format::Form)),
            (Some("rows.txt"), b"Name,Email\n", Some(Format::Csv)),
            (None, mail, Some(Format::Email)),
            (None, b"  {\"a\": 1}", Some(Format::Json)),
            (Some("-"), b"Name,Email\n", None),
        ];
        for (name, body, want) in cases {
            assert_eq!(Format::infer(name, body), want, "{name:?}");
        }
        assert_eq!(Format::infer(None, b"<adfx/>"), Some(Format::Xml), "only the adf root is ADF");
        assert_eq!(Format::infer(None, b"Subject x\n\n"), None, "not a header line");
    }
}
