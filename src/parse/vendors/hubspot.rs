//! HubSpot Forms API v3 submission bodies (what integrations POST to
//! `api.hsforms.com/submissions/v3/integration[/secure]/submit/{portalId}/{formGuid}`).
//!
//! ```json
//! {"fields": [{"objectTypeId": "0-1", "name": "email", "value": "a@example.com"}, …],
//!  "submittedAt": "1760000000000",
//!  "context": {"hutk": "…", "ipAddress": "…", "pageUri": "…", "pageName": "…"},
//!  "legalConsentOptions": {"consent": {"consentToProcess": true, "text": "…",
//!    "communications": [{"value": true, "subscriptionTypeId": 999, "text": "…"}]}}}
//! ```
//!
//! - `fields` keep HubSpot's property names (`firstname`, `mobilephone`, `zip`, …), which
//!   the aliases resolve like any vendor's; a `0-1/` object-type prefix is dropped.
//! - Multi-select properties arrive as `a;b;c`: a property with no canonical home whose
//!   value has `;` with no space around it becomes a list (`"We need x; and y"` stays text).
//!   A property repeated, or sent with a list value, is a list too.
//! - Dates: properties that hold epoch milliseconds (as strings or numbers) become
//!   `YYYY-MM-DD` (HubSpot date properties are midnight UTC) or RFC 3339 when they have a
//!   time. They are the source's `[hubspot] date_fields` (refused when not a date), and
//!   names that say so (`date_of_birth`, `birthdate`, `*_date`) when the value looks like one.
//! - `context.ipAddress` → `ip_address`, `context.pageUri` → `landing_page_url`; the rest of
//!   `context` under `custom` (`hutk`, `page_name`, …). `submittedAt` → `custom.submitted_at`
//!   (RFC 3339).
//! - `legalConsentOptions` → consent: `consentToProcess` (or the legitimate-interest
//!   `value`) is the flag, its `text` the consent text, `submittedAt` its timestamp; the
//!   communications and legitimate-interest objects are kept verbatim under `custom`.
//!
//! `skipValidation` steers HubSpot, not leadgate (validation is the source's rules): it is
//! left in the raw body only.
//!
//! Tolerated: raw line breaks in strings and trailing commas, numbers and booleans as
//! values, `null` values (skipped), unknown top-level members (kept under `custom`).
//! Refused: no `fields` array, a field without a `name`, an object as a value, a
//! configured date field that is not epoch milliseconds.

use serde_json::{Map, Value};

use super::lenient_json::{self, Tolerance};
use super::{custom, epoch_ms_rfc3339, field_error, flag, kind, scalar_text};
use crate::lead::normalize::Aliases;
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

const TOLERANCE: Tolerance = Tolerance::HAND_MADE;

/// Parses one submission body into one record.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let doc = lenient_json::parse(raw, TOLERANCE, cx.max_depth)?;
    let Value::Object(obj) = &doc.value else {
        return Err(ParseError::new(format!(
            "the HubSpot submission is {}, expected a JSON object",
            kind(&doc.value)
        )));
    };
    Ok(ParseOutput { records: vec![record(obj, cx)?], batch: false })
}

fn record(obj: &Map<String, Value>, cx: &ParseContext) -> Result<Record, ParseError> {
    let mut out = Record::new();
    let fields = match obj.get("fields") {
        Some(Value::Array(f)) => f,
        None => return Err(field_error("fields", "missing")),
        Some(other) => return Err(field_error("fields", format!("is {}, expected an array", kind(other)))),
    };
    if fields.len() > cx.max_records.max(1000) {
        return Err(field_error("fields", format!("has {} entries; HubSpot allows 1000", fields.len())));
    }
    let builtin = Aliases::default();
    for (i, field) in fields.iter().enumerate() {
        let at = format!("fields[{i}]");
        let Value::Object(field) = field else {
            return Err(field_error(&at, format!("is {}, expected an object", kind(field))));
        };
        let name = match field.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => property_name(n.trim()),
            _ => return Err(field_error(&format!("{at}.name"), "missing or not a string")),
        };
        let at = format!("{at}.value ({name})");
        let value = match field.get("value") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => {
                let texts = items
                    .iter()
                    .map(|v| scalar_text(v).ok_or_else(|| field_error(&at, format!("holds {}", kind(v)))))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Array(texts.into_iter().map(Value::String).collect())
            }
            Some(v) => {
                let text = scalar_text(v)
                    .ok_or_else(|| field_error(&at, format!("is {}, expected a string", kind(v))))?;
                if let Some(date) = date_value(name, v, &text, cx, &at)? {
                    Value::String(date)
                } else if builtin.resolve(name).is_none() && is_multi_select(&text) {
                    Value::Array(text.split(';').map(|p| Value::String(p.to_owned())).collect())
                } else {
                    Value::String(text)
                }
            }
        };
        out.push((name.to_owned(), value));
    }

    let submitted_at = obj.get("submittedAt").and_then(epoch_ms_rfc3339);
    for (key, value) in obj {
        match key.as_str() {
            "fields" | "skipValidation" => {}
            "submittedAt" => match &submitted_at {
                Some(t) => out.push((custom("submitted_at"), Value::String(t.clone()))),
                None if value.is_null() => {}
                None => return Err(field_error("submittedAt", "expected epoch milliseconds")),
            },
            "context" => context(value, &mut out)?,
            "legalConsentOptions" => consent(value, submitted_at.as_deref(), &mut out)?,
            k => out.push((custom(k), value.clone())),
        }
    }
    Ok(out)
}

/// `0-1/email` (object type / property) → `email`.
fn property_name(name: &str) -> &str {
    match name.split_once('/') {
        Some((object_type, property))
            if !property.is_empty() && object_type.bytes().all(|b| b.is_ascii_digit() || b == b'-') =>
        {
            property
        }
        _ => name,
    }
}

/// `a;b;c` with no space next to any `;` and no empty part.
fn is_multi_select(text: &str) -> bool {
    text.contains(';')
        && !text.contains("; ")
        && !text.contains(" ;")
        && text.split(';').all(|p| !p.trim().is_empty())
}

fn named_as_date(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("_date") || matches!(n.as_str(), "date" | "date_of_birth" | "dateofbirth" | "birthdate")
}

/// The date text for a date property, `None` when `name` is not one.
fn date_value(
    name: &str,
    v: &Value,
    text: &str,
    cx: &ParseContext,
    at: &str,
) -> Result<Option<String>, ParseError> {
    let configured = cx.vendors.hubspot_date_fields.iter().any(|f| f.eq_ignore_ascii_case(name));
    if !configured && !named_as_date(name) {
        return Ok(None);
    }
    let looks_like_epoch = {
        let t = text.trim();
        (10..=14).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    match (looks_like_epoch.then(|| epoch_ms_rfc3339(v)).flatten(), configured) {
        (Some(rfc), _) => Ok(Some(match rfc.strip_suffix("T00:00:00Z") {
            Some(day) => day.to_owned(),
            None => rfc,
        })),
        (None, true) => Err(field_error(at, "expected a date as epoch milliseconds")),
        (None, false) => Ok(None),
    }
}

fn context(value: &Value, out: &mut Record) -> Result<(), ParseError> {
    let ctx = match value {
        Value::Null => return Ok(()),
        Value::Object(c) => c,
        other => return Err(field_error("context", format!("is {}, expected an object", kind(other)))),
    };
    for (k, v) in ctx {
        let name = match k.as_str() {
            "ipAddress" => "ip_address".to_owned(),
            "pageUri" => "landing_page_url".to_owned(),
            "hutk" => custom("hutk"),
            "pageName" => custom("page_name"),
            "pageId" => custom("page_id"),
            "sfdcCampaignId" => custom("sfdc_campaign_id"),
            "goToWebinarWebinarKey" => custom("goto_webinar_key"),
            other => custom(&format!("context.{other}")),
        };
        out.push((name, v.clone()));
    }
    Ok(())
}

fn consent(value: &Value, submitted_at: Option<&str>, out: &mut Record) -> Result<(), ParseError> {
    let opts = match value {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        other => {
            return Err(field_error(
                "legalConsentOptions",
                format!("is {}, expected an object", kind(other)),
            ));
        }
    };
    let mut given = None;
    let mut text = None;
    if let Some(c) = opts.get("consent") {
        let Value::Object(c) = c else {
            return Err(field_error(
                "legalConsentOptions.consent",
                format!("is {}, expected an object", kind(c)),
            ));
        };
        if let Some(v) = c.get("consentToProcess") {
            given = Some(flag(v).ok_or_else(|| {
                field_error("legalConsentOptions.consent.consentToProcess", "expected true or false")
            })?);
        }
        text = c.get("text").and_then(Value::as_str).map(str::to_owned);
        if let Some(comms) = c.get("communications").filter(|v| !v.is_null()) {
            out.push((custom("consent_communications"), comms.clone()));
        }
    }
    if let Some(li) = opts.get("legitimateInterest").filter(|v| !v.is_null()) {
        if given.is_none() {
            given = li.get("value").and_then(flag);
        }
        if text.is_none() {
            text = li.get("text").and_then(Value::as_str).map(str::to_owned);
        }
        out.push((custom("legitimate_interest"), li.clone()));
    }
    if let Some(g) = given {
        out.push(("consent".into(), Value::Bool(g)));
        if let (true, Some(t)) = (g, submitted_at) {
            out.push(("consent.timestamp".into(), Value::String(t.to_owned())));
        }
    }
    if let Some(t) = text {
        out.push(("consent.text".into(), Value::String(t)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get<'r>(r: &'r Record, name: &str) -> Option<&'r Value> {
        r.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    #[test]
    fn fields_context_dates_and_consent() {
        let body = br#"{"submittedAt": 1760000000000, "fields": [
            {"objectTypeId": "0-1", "name": "0-1/email", "value": "a@example.com"},
            {"name": "services", "value": "Solar;Battery storage"},
            {"name": "how_can_we_help", "value": "Quote; and a visit"},
            {"name": "date_of_birth", "value": "946684800000"},
            {"name": "move_in", "value": 1767225600000},
            {"name": "numemployees", "value": 25},
            {"name": "skipped", "value": null}],
          "context": {"ipAddress": "203.0.113.9", "pageUri": "https://example.com/a", "hutk": "abc"},
          "legalConsentOptions": {"consent": {"consentToProcess": true, "text": "I agree",
             "communications": [{"value": true, "subscriptionTypeId": 999, "text": "Marketing"}]}}}"#;
        let mut cx = ParseContext::default();
        cx.vendors.hubspot_date_fields = vec!["move_in".into()];
        let r = &parse(body, &cx).unwrap().records[0];
        assert_eq!(get(r, "email"), Some(&json!("a@example.com")));
        assert_eq!(get(r, "services"), Some(&json!(["Solar", "Battery storage"])));
        assert_eq!(get(r, "how_can_we_help"), Some(&json!("Quote; and a visit")));
        assert_eq!(get(r, "date_of_birth"), Some(&json!("2000-01-01")));
        assert_eq!(get(r, "move_in"), Some(&json!("2026-01-01")));
        assert_eq!(get(r, "numemployees"), Some(&json!("25")));
        assert_eq!(get(r, "skipped"), None);
        assert_eq!(get(r, "ip_address"), Some(&json!("203.0.113.9")));
        assert_eq!(get(r, "landing_page_url"), Some(&json!("https://example.com/a")));
        assert_eq!(get(r, &custom("hutk")), Some(&json!("abc")));
        assert_eq!(get(r, &custom("submitted_at")), Some(&json!("2025-10-09T08:53:20Z")));
        assert_eq!(get(r, "consent"), Some(&json!(true)));
        assert_eq!(get(r, "consent.text"), Some(&json!("I agree")));
        assert_eq!(get(r, "consent.timestamp"), Some(&json!("2025-10-09T08:53:20Z")));
        assert!(get(r, &custom("consent_communications")).is_some());
    }

    #[test]
    fn broken_submissions_name_the_field() {
        let mut cx = ParseContext::default();
        cx.vendors.hubspot_date_fields = vec!["move_in".into()];
        for (body, what) in [
            (&br#"{"context": {}}"#[..], "fields: missing"),
            (br#"{"fields": [{"value": "x"}]}"#, "fields[0].name"),
            (br#"{"fields": [{"name": "a", "value": {"x": 1}}]}"#, "fields[0].value (a)"),
            (br#"{"fields": [{"name": "move_in", "value": "next week"}]}"#, "epoch milliseconds"),
            (br#"{"fields": [], "submittedAt": "yesterday"}"#, "submittedAt"),
            (
                br#"{"fields": [], "legalConsentOptions": {"consent": {"consentToProcess": "perhaps"}}}"#,
                "consentToProcess",
            ),
        ] {
            let e = parse(body, &cx).unwrap_err();
            assert!(e.message.contains(what), "{}", e.message);
        }
    }

    #[test]
    fn legitimate_interest_is_consent_too() {
        let body = br#"{"fields": [], "legalConsentOptions": {"legitimateInterest":
            {"value": true, "subscriptionTypeId": 999, "legalBasis": "LEAD", "text": "LI text"}},}"#;
        let r = &parse(body, &ParseContext::default()).unwrap().records[0];
        assert_eq!(get(r, "consent"), Some(&json!(true)));
        assert_eq!(get(r, "consent.text"), Some(&json!("LI text")));
    }
}
