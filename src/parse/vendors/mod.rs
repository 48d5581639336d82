//! Well-known vendor formats: Google Ads lead forms, Meta Lead Ads, HubSpot form
//! submissions, Salesforce Web-to-Lead posts and LeadConduit-style posts.
//!
//! Each parser knows its vendor's field names exactly, so it maps them itself rather
//! than leaving them to alias guessing: a canonical target is emitted under its canonical
//! name (`first_name`, `consent.jornaya_leadid`), and a field that belongs in `custom` is
//! emitted as [`custom`]`(name)`, which normalization puts under `custom` by that exact
//! name whatever aliases say. Fields the vendor format does not define (a vendor's own
//! extra fields) keep their names and go through the source's aliases like any post.
//!
//! Each parser also decides, and documents, which deviations from its vendor's format it
//! tolerates; everything else is refused with a [`ParseError`] naming the line and column
//! or the field (`user_column_data[2].column_id`). Parsers never see secrets: the intake
//! checks them and redacts them from the stored body.

pub mod google_ads;
pub mod hubspot;
pub mod leadconduit;
pub mod lenient_json;
pub mod meta;
pub mod web_to_lead;

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ParseContext, ParseError, ParseOutput};

/// Prefix of record names a parser has already mapped (a control character, so no
/// vendor field name can start with it by accident).
pub const MAPPED: &str = "\u{1}";

/// The record name that puts a value under `custom` as `name`, bypassing aliases.
pub fn custom(name: &str) -> String {
    format!("{MAPPED}custom:{name}")
}

/// Record name of the vendor's "this is a test lead" flag (value `true`): the lead is
/// stored and flagged, and never sold.
pub const TEST_LEAD: &str = "\u{1}test";

/// What a mapped record name means to normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// Not a mapped name: resolve it through aliases.
    No,
    /// `custom` under this exact name.
    Custom(&'a str),
    /// The test-lead flag.
    TestLead,
}

/// Classifies a record name (see [`Mapped`]).
pub fn mapped(name: &str) -> Mapped<'_> {
    match name.strip_prefix(MAPPED) {
        None => Mapped::No,
        Some("test") => Mapped::TestLead,
        Some(rest) => Mapped::Custom(rest.strip_prefix("custom:").unwrap_or(rest)),
    }
}

/// Per-source settings of the vendor parsers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorOptions {
    /// Web-to-Lead: custom field id (`00N…`, matched exactly: Salesforce ids are
    /// case-sensitive) → target (`postal_code`, `custom.budget`, …).
    pub web_to_lead_fields: BTreeMap<String, String>,
    /// HubSpot: properties that hold epoch-millisecond dates (besides the names that say
    /// so, such as `date_of_birth` and `*_date`).
    pub hubspot_date_fields: Vec<String>,
}

/// Parses a vendor format (the caller has matched the format).
pub(super) fn parse(format: super::Format, raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    use super::Format;
    match format {
        Format::GoogleAds => google_ads::parse(raw, cx),
        Format::MetaLead => meta::parse_lead(raw, cx),
        Format::MetaNotification => meta::parse_notification(raw, cx).map(|_| ParseOutput::default()),
        Format::Hubspot => hubspot::parse(raw, cx),
        Format::WebToLead => web_to_lead::parse(raw, cx),
        Format::Leadconduit => leadconduit::parse(raw, cx),
        Format::Json
        | Format::Form
        | Format::Xml
        | Format::Email
        | Format::Adf
        | Format::Csv
        | Format::Xlsx
        | Format::Jsonl => {
            Err(ParseError::new("internal: not a vendor format (the payload is kept for replay)"))
        }
    }
}

/// A scalar's text: strings as they are, numbers in their exact decimal form (so an id
/// sent as a number keeps every digit), booleans as `true`/`false`. `None` for the rest.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// An id: a string, or an integer (kept exact; [`lenient_json`] already turned integers
/// beyond 64 bits into their digits). Fractions and other shapes are not ids.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A yes/no answer as vendors write it: booleans, `1`/`0`, `"true"`/`"false"`, `"1"`/`"0"`.
pub fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Some(true),
            "0" | "false" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// "a string", "an array" … for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A refusal naming the field (`fields[3].value`).
pub fn field_error(field: &str, message: impl std::fmt::Display) -> ParseError {
    ParseError::new(format!("{field}: {message}"))
}

/// Epoch milliseconds (a JSON number or a string of digits) as RFC 3339 UTC, or `None`
/// when the value is not one.
pub fn epoch_ms_rfc3339(v: &Value) -> Option<String> {
    let ms: i64 = match v {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()?
        }
        _ => return None,
    };
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapped_names_are_recognised() {
        assert_eq!(mapped("email"), Mapped::No);
        assert_eq!(mapped(&custom("What is your budget?")), Mapped::Custom("What is your budget?"));
        assert_eq!(mapped(TEST_LEAD), Mapped::TestLead);
    }

    #[test]
    fn ids_and_flags() {
        assert_eq!(id_text(&json!(9_007_199_254_740_993u64)).as_deref(), Some("9007199254740993"));
        assert_eq!(id_text(&json!(" L-1 ")).as_deref(), Some("L-1"));
        assert_eq!(id_text(&json!(1.5)), None);
        assert_eq!(flag(&json!("1")), Some(true));
        assert_eq!(flag(&json!(false)), Some(false));
        assert_eq!(flag(&json!("maybe")), None);
        assert_eq!(epoch_ms_rfc3339(&json!("1760000000000")).as_deref(), Some("2025-10-09T08:53:20Z"));
        assert_eq!(epoch_ms_rfc3339(&json!("17-60")), None);
    }
}
