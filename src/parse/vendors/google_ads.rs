//! Google Ads lead-form webhook (`WebhookLead`): one lead per request.
//!
//! ```json
//! {"lead_id": "…", "user_column_data": [{"column_id": "FULL_NAME", "column_name": "Full Name",
//!  "string_value": "Sam Okafor"}, …], "form_id": 400…, "campaign_id": 200…, "google_key": "…",
//!  "is_test": false, "gcl_id": "…", "adgroup_id": …, "creative_id": …, "api_version": "1.0"}
//! ```
//!
//! - Known `column_id`s map to canonical fields: `FULL_NAME` (split into first and last
//!   name), `FIRST_NAME`, `LAST_NAME`, `EMAIL` (`WORK_EMAIL` when there is no `EMAIL`),
//!   `PHONE_NUMBER`, `WORK_PHONE`, `STREET_ADDRESS`, `POSTAL_CODE`, `CITY`, `REGION`
//!   (→ `state`, turned into a code by normalization), `COUNTRY`, `COMPANY_NAME`,
//!   `JOB_TITLE`. Every other answer goes to `custom` under its `column_name`, or its
//!   `column_id` when there is no name.
//! - `lead_id` is the lead's `vendor_lead_id` (Google's retries carry the same one).
//! - `is_test: true` marks a test lead ([`super::TEST_LEAD`]): stored, flagged, never sold.
//! - Ids are text, exactly: integers (even beyond 2^53, or 64 bits) are never floats.
//! - `google_key` is never part of the lead (the intake checks and redacts it).
//!
//! Tolerated: raw line breaks inside strings and trailing commas (test payloads pasted
//! from the docs), numbers or booleans where Google sends strings (`"string_value": 60601`),
//! `is_test` as `"true"`/`"false"`, answers without `string_value` (skipped), unknown
//! top-level members (kept under `custom`). Refused: anything that is not an object with
//! a `lead_id` and a `user_column_data` array of objects that each have a `column_id`.

use serde_json::{Map, Value};

use super::lenient_json::{self, Tolerance};
use super::{TEST_LEAD, custom, field_error, flag, id_text, kind, scalar_text};
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

/// The member holding the advertiser's shared secret.
pub const GOOGLE_KEY: &str = "google_key";

const TOLERANCE: Tolerance = Tolerance::HAND_MADE;

/// `column_id` → canonical record name.
fn canonical(column_id: &str) -> Option<&'static str> {
    Some(match column_id {
        "FULL_NAME" => "full_name",
        "FIRST_NAME" => "first_name",
        "LAST_NAME" => "last_name",
        "EMAIL" => "email",
        "PHONE_NUMBER" => "phone",
        // A phone-like name: fills `phone` when there is no PHONE_NUMBER, else `phone_2`.
        "WORK_PHONE" => "work phone",
        "STREET_ADDRESS" => "street",
        "POSTAL_CODE" => "postal_code",
        "CITY" => "city",
        "REGION" => "state",
        "COUNTRY" => "country",
        "COMPANY_NAME" => "company",
        "JOB_TITLE" => "title",
        _ => return None,
    })
}

/// Parses one webhook body into one record.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let doc = lenient_json::parse(raw, TOLERANCE, cx.max_depth)?;
    let Value::Object(obj) = doc.value else {
        return Err(ParseError::new(format!(
            "the Google Ads lead is {}, expected a JSON object",
            kind(&doc.value)
        )));
    };
    Ok(ParseOutput { records: vec![record(&obj, cx)?], batch: false })
}

fn record(obj: &Map<String, Value>, cx: &ParseContext) -> Result<Record, ParseError> {
    let mut out = Record::new();
    let lead_id = match obj.get("lead_id") {
        None | Some(Value::Null) => {
            return Err(field_error("lead_id", "missing; Google sends one with every lead"));
        }
        Some(v) => {
            id_text(v).ok_or_else(|| field_error("lead_id", format!("is {}, expected an id", kind(v))))?
        }
    };
    out.push(("vendor_lead_id".into(), Value::String(lead_id)));

    let columns = match obj.get("user_column_data") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err(field_error("user_column_data", "missing")),
        Some(other) => {
            return Err(field_error("user_column_data", format!("is {}, expected an array", kind(other))));
        }
    };
    if columns.len() > cx.max_records.max(1000) {
        return Err(field_error("user_column_data", format!("has {} answers; too many", columns.len())));
    }
    let has_email = columns.iter().any(|c| c.get("column_id").and_then(Value::as_str) == Some("EMAIL"));
    for (i, column) in columns.iter().enumerate() {
        let at = |f: &str| format!("user_column_data[{i}]{f}");
        let Value::Object(c) = column else {
            return Err(field_error(&at(""), format!("is {}, expected an object", kind(column))));
        };
        let column_id = match c.get("column_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
            None | Some(Value::Null) => return Err(field_error(&at(".column_id"), "missing")),
            Some(other) => {
                return Err(field_error(&at(".column_id"), format!("is {}, expected a string", kind(other))));
            }
        };
        let value = match c.get("string_value") {
            None | Some(Value::Null) => continue,
            Some(v) => scalar_text(v).ok_or_else(|| {
                field_error(&at(".string_value"), format!("is {}, expected a string", kind(v)))
            })?,
        };
        let name = match (column_id, canonical(column_id)) {
            ("WORK_EMAIL", _) if !has_email => "email".to_owned(),
            (_, Some(target)) => target.to_owned(),
            (_, None) => {
                let label =
                    c.get("column_name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
                custom(label.unwrap_or(column_id))
            }
        };
        out.push((name, Value::String(value)));
    }

    for (key, value) in obj {
        match key.as_str() {
            "lead_id" | "user_column_data" | GOOGLE_KEY => {}
            "is_test" => match flag(value) {
                Some(true) => out.push((TEST_LEAD.into(), Value::Bool(true))),
                Some(false) => {}
                None => {
                    return Err(field_error(
                        "is_test",
                        format!("is {}, expected true or false", kind(value)),
                    ));
                }
            },
            // Google's ids are int64 in its schema: kept as exact text.
            k if k.ends_with("_id") => match id_text(value) {
                Some(id) => out.push((custom(k), Value::String(id))),
                None => out.push((custom(k), value.clone())),
            },
            k => out.push((custom(k), value.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(r: &Record) -> Vec<String> {
        r.iter().map(|(k, _)| k.replace(super::super::MAPPED, "~")).collect()
    }

    #[test]
    fn columns_map_to_canonical_fields_and_custom() {
        let body = br#"{"lead_id": "L1", "user_column_data": [
            {"column_name": "Full Name", "string_value": "Sam Okafor", "column_id": "FULL_NAME"},
            {"string_value": "Kitchen remodel", "column_id": "SERVICE"},
            {"column_name": "What is your budget?", "string_value": "$20k", "column_id": "q1"},
            {"string_value": "w@example.com", "column_id": "WORK_EMAIL"},
            {"string_value": "Illinois", "column_id": "REGION"},
            {"column_id": "CITY"}
        ], "google_key": "secret", "is_test": true, "form_id": 40000000001, "adgroup_id": 9007199254740993}"#;
        let out = parse(body, &ParseContext::default()).unwrap();
        let r = &out.records[0];
        assert_eq!(
            names(r),
            [
                "vendor_lead_id",
                "full_name",
                "~custom:SERVICE",
                "~custom:What is your budget?",
                "email",
                "state",
                "~test",
                "~custom:form_id",
                "~custom:adgroup_id"
            ]
        );
        assert_eq!(r[8].1, json!("9007199254740993"));
        assert!(!r.iter().any(|(_, v)| v == "secret"));
    }

    #[test]
    fn work_email_is_custom_when_email_is_given() {
        let body = br#"{"lead_id": 12345678901234567890123, "user_column_data": [
            {"string_value": "w@example.com", "column_id": "WORK_EMAIL"},
            {"string_value": "e@example.com", "column_id": "EMAIL"}]}"#;
        let r = &parse(body, &ParseContext::default()).unwrap().records[0];
        assert_eq!(r[0].1, json!("12345678901234567890123"));
        assert_eq!(names(r)[1..], ["~custom:WORK_EMAIL", "email"]);
    }

    #[test]
    fn broken_payloads_name_the_field_or_position() {
        let cx = ParseContext::default();
        let cases: [(&[u8], &str); 7] = [
            (br#"{"user_column_data": []}"#, "lead_id: missing"),
            (br#"{"lead_id": "x"}"#, "user_column_data: missing"),
            (br#"{"lead_id": "x", "user_column_data": {}}"#, "user_column_data: is an object"),
            (
                br#"{"lead_id": "x", "user_column_data": [{"string_value": "a"}]}"#,
                "user_column_data[0].column_id: missing",
            ),
            (
                br#"{"lead_id": "x", "user_column_data": [{"column_id": "A", "string_value": []}]}"#,
                "user_column_data[0].string_value",
            ),
            (br#"{"lead_id": "x", "user_column_data": [], "is_test": "perhaps"}"#, "is_test"),
            (b"[1]", "expected a JSON object"),
        ];
        for (body, what) in cases {
            let e = parse(body, &cx).unwrap_err();
            assert!(e.message.contains(what), "{}: {}", String::from_utf8_lossy(body), e.message);
        }
        let e = parse(b"{\"lead_id\": \"x\",\n \"user_column_data\": [}", &cx).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(23)));
    }

    #[test]
    fn tolerates_raw_newlines_trailing_commas_and_numbers() {
        let body = b"{\"lead_id\": \"x\", \"user_column_data\": [\r\n {\"column_id\": \"POSTAL_CODE\", \"string_value\": 60601,},\r\n {\"column_id\": \"NOTES\", \"string_value\": \"two\r\nlines\"},\r\n],}";
        let r = &parse(body, &ParseContext::default()).unwrap().records[0];
        assert_eq!(r[1], ("postal_code".into(), json!("60601")));
        assert_eq!(r[2].1, json!("two\r\nlines"));
    }
}
