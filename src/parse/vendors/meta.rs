//! Meta (Facebook/Instagram) Lead Ads: the webhook *notification* (ids only) and the
//! lead object the Graph API returns for one of its `leadgen_id`s.
//!
//! The notification (`{"object": "page", "entry": [{"changes": [{"field": "leadgen",
//! "value": {"leadgen_id": …}}]}]}`) carries no lead data: [`parse_notification`] lists
//! its `leadgen` changes (several changes, or entries, are several leads) and the intake
//! fetches each lead. Changes of other fields are ignored. Refused: anything but an
//! object with an `entry` array, and a `leadgen` change without a `leadgen_id`. Meta
//! writes this JSON itself and signs it, so it is read strictly; ids may be strings or
//! numbers (Meta's own examples use both) and are kept exact.
//!
//! The lead ([`parse_lead`]): `id` is the `vendor_lead_id` (so a second notification for
//! the same lead is answered like the first); `field_data` answers map by Meta's standard
//! question names (`full_name`, `email`, `phone_number`, `city`, `zip_code`, …) and every
//! other question goes to `custom` under its name, with *all* its values when it has
//! several (multiple-choice answers are kept as a list); `custom_disclaimer_responses`
//! become consent (given when every checkbox is checked; the responses themselves are
//! kept under `custom`). Tolerated: numeric ids, a single value instead of a `values`
//! list, `is_checked` as `"1"`/`"0"`/booleans. Refused: no `id`, no `field_data` array,
//! an answer without a `name`.

use serde_json::{Map, Value};

use super::lenient_json::{self, Tolerance};
use super::{custom, field_error, flag, id_text, kind, scalar_text};
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

/// One `leadgen` change of a notification: the lead to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadgenChange {
    pub leadgen_id: String,
    pub page_id: Option<String>,
    pub form_id: Option<String>,
    pub ad_id: Option<String>,
    pub adgroup_id: Option<String>,
}

/// Lists the leads a notification announces (see the module docs).
pub fn parse_notification(raw: &[u8], cx: &ParseContext) -> Result<Vec<LeadgenChange>, ParseError> {
    let doc = lenient_json::parse(raw, Tolerance::STRICT, cx.max_depth)?;
    let Value::Object(obj) = &doc.value else {
        return Err(ParseError::new(format!(
            "the notification is {}, expected a JSON object",
            kind(&doc.value)
        )));
    };
    let entries = match obj.get("entry") {
        Some(Value::Array(e)) => e,
        None => return Err(field_error("entry", "missing")),
        Some(other) => return Err(field_error("entry", format!("is {}, expected an array", kind(other)))),
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(field_error(
                &format!("entry[{i}]"),
                format!("is {}, expected an object", kind(entry)),
            ));
        };
        let changes = match entry.get("changes") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(c)) => c,
            Some(other) => {
                return Err(field_error(
                    &format!("entry[{i}].changes"),
                    format!("is {}, expected an array", kind(other)),
                ));
            }
        };
        for (j, change) in changes.iter().enumerate() {
            let at = format!("entry[{i}].changes[{j}]");
            let Value::Object(change) = change else {
                return Err(field_error(&at, format!("is {}, expected an object", kind(change))));
            };
            if change.get("field").and_then(Value::as_str) != Some("leadgen") {
                continue;
            }
            let Some(Value::Object(value)) = change.get("value") else {
                return Err(field_error(&format!("{at}.value"), "missing or not an object"));
            };
            let leadgen_id = value
                .get("leadgen_id")
                .and_then(id_text)
                .ok_or_else(|| field_error(&format!("{at}.value.leadgen_id"), "missing or not an id"))?;
            let id = |k: &str| value.get(k).and_then(id_text);
            out.push(LeadgenChange {
                leadgen_id,
                page_id: id("page_id").or_else(|| entry.get("id").and_then(id_text)),
                form_id: id("form_id"),
                ad_id: id("ad_id"),
                adgroup_id: id("adgroup_id"),
            });
            if out.len() > cx.max_records {
                return Err(ParseError::new(format!(
                    "the notification announces more than {} leads",
                    cx.max_records
                )));
            }
        }
    }
    Ok(out)
}

/// Meta's standard question name → canonical record name.
fn canonical(name: &str) -> Option<&'static str> {
    Some(match name {
        "full_name" => "full_name",
        "first_name" => "first_name",
        "last_name" => "last_name",
        "email" => "email",
        "phone_number" => "phone",
        // Phone-like: `phone` when there is no phone_number, else `phone_2`.
        "work_phone_number" => "work phone",
        "street_address" => "street",
        "city" => "city",
        "state" | "province" => "state",
        "zip_code" | "post_code" | "zip" | "postal_code" => "postal_code",
        "country" => "country",
        "company_name" => "company",
        "job_title" => "title",
        _ => return None,
    })
}

/// Parses the Graph API lead object into one record.
pub fn parse_lead(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let doc = lenient_json::parse(raw, Tolerance::STRICT, cx.max_depth)?;
    let Value::Object(obj) = &doc.value else {
        return Err(ParseError::new(format!(
            "the Meta lead is {}, expected a JSON object",
            kind(&doc.value)
        )));
    };
    Ok(ParseOutput { records: vec![lead_record(obj)?], batch: false })
}

fn lead_record(obj: &Map<String, Value>) -> Result<Record, ParseError> {
    let mut out = Record::new();
    let id = obj.get("id").and_then(id_text).ok_or_else(|| field_error("id", "missing or not an id"))?;
    out.push(("vendor_lead_id".into(), Value::String(id)));

    let answers = match obj.get("field_data") {
        Some(Value::Array(a)) => a,
        None => return Err(field_error("field_data", "missing")),
        Some(other) => {
            return Err(field_error("field_data", format!("is {}, expected an array", kind(other))));
        }
    };
    let has_email = answers.iter().any(|a| a.get("name").and_then(Value::as_str) == Some("email"));
    for (i, answer) in answers.iter().enumerate() {
        let at = format!("field_data[{i}]");
        let Value::Object(answer) = answer else {
            return Err(field_error(&at, format!("is {}, expected an object", kind(answer))));
        };
        let name = match answer.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.trim(),
            _ => return Err(field_error(&format!("{at}.name"), "missing or not a string")),
        };
        let values: Vec<String> = match answer.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(vs)) => vs
                .iter()
                .map(|v| {
                    scalar_text(v).ok_or_else(|| {
                        field_error(&format!("{at}.values"), format!("holds {}, expected strings", kind(v)))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => vec![scalar_text(v).ok_or_else(|| {
                field_error(&format!("{at}.values"), format!("is {}, expected a list of strings", kind(v)))
            })?],
        };
        let value = match values.len() {
            0 => continue,
            1 => Value::String(values.into_iter().next().unwrap_or_default()),
            _ => Value::Array(values.into_iter().map(Value::String).collect()),
        };
        let target = match (name, canonical(name)) {
            ("work_email", _) if !has_email => "email".to_owned(),
            // A multiple-choice answer with several values is not one canonical value.
            (_, Some(t)) if !value.is_array() => t.to_owned(),
            _ => custom(name),
        };
        out.push((target, value));
    }

    for (key, value) in obj {
        match key.as_str() {
            "id" | "field_data" => {}
            "custom_disclaimer_responses" => consent(value, &mut out)?,
            k if k.ends_with("_id") => {
                out.push((custom(k), id_text(value).map_or_else(|| value.clone(), Value::String)))
            }
            k => out.push((custom(k), value.clone())),
        }
    }
    Ok(out)
}

/// `[{"checkbox_key": "…", "is_checked": "1"}]` → consent given when every box is checked.
fn consent(value: &Value, out: &mut Record) -> Result<(), ParseError> {
    let items = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        other => {
            return Err(field_error(
                "custom_disclaimer_responses",
                format!("is {}, expected an array", kind(other)),
            ));
        }
    };
    if items.is_empty() {
        return Ok(());
    }
    let mut all_checked = true;
    for (i, item) in items.iter().enumerate() {
        let checked = item.get("is_checked").and_then(flag).ok_or_else(|| {
            field_error(
                &format!("custom_disclaimer_responses[{i}].is_checked"),
                "missing or not a yes/no value",
            )
        })?;
        all_checked &= checked;
    }
    out.push(("consent".into(), Value::Bool(all_checked)));
    out.push((custom("custom_disclaimer_responses"), value.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notifications_list_every_leadgen_change() {
        let body = br#"{"object":"page","entry":[
            {"id":"P1","time":1,"changes":[
                {"field":"leadgen","value":{"leadgen_id":"L1","form_id":"F"}},
                {"field":"feed","value":{}},
                {"field":"leadgen","value":{"leadgen_id":44000000000000051234}}]},
            {"id":"P2","changes":[{"field":"leadgen","value":{"leadgen_id":"L3","page_id":"P9"}}]}]}"#;
        let changes = parse_notification(body, &ParseContext::default()).unwrap();
        let ids: Vec<_> = changes.iter().map(|c| c.leadgen_id.as_str()).collect();
        assert_eq!(ids, ["L1", "44000000000000051234", "L3"]);
        assert_eq!(changes[0].page_id.as_deref(), Some("P1"));
        assert_eq!(changes[2].page_id.as_deref(), Some("P9"));
        let e = parse_notification(
            br#"{"entry":[{"changes":[{"field":"leadgen","value":{}}]}]}"#,
            &ParseContext::default(),
        )
        .unwrap_err();
        assert!(e.message.starts_with("entry[0].changes[0].value.leadgen_id"), "{}", e.message);
        assert!(
            parse_notification(b"{\"entry\": [],}", &ParseContext::default()).unwrap_err().line.is_some()
        );
    }

    #[test]
    fn a_lead_keeps_multi_answers_and_disclaimers() {
        let body = br#"{"id": 4400000000000005, "created_time": "2026-10-09T10:11:12+0000", "ad_id": 120000000000008,
            "field_data": [{"name":"full_name","values":["Noor Haddad"]},{"name":"phone_number","values":"+447700900123"},
              {"name":"which?","values":["A","B"]},{"name":"city","values":[]}],
            "custom_disclaimer_responses": [{"checkbox_key":"a","is_checked":"1"},{"checkbox_key":"b","is_checked":true}]}"#;
        let r = &parse_lead(body, &ParseContext::default()).unwrap().records[0];
        assert_eq!(r[0], ("vendor_lead_id".into(), json!("4400000000000005")));
        assert_eq!(r[1], ("full_name".into(), json!("Noor Haddad")));
        assert_eq!(r[2], ("phone".into(), json!("+447700900123")));
        assert_eq!(r[3], (custom("which?"), json!(["A", "B"])));
        assert!(r.contains(&(custom("ad_id"), json!("120000000000008"))));
        assert!(r.contains(&("consent".into(), json!(true))));
    }

    #[test]
    fn broken_leads_name_the_field() {
        let cx = ParseContext::default();
        for (body, what) in [
            (&br#"{"field_data": []}"#[..], "id: missing"),
            (br#"{"id": "1"}"#, "field_data: missing"),
            (br#"{"id": "1", "field_data": [{"values": ["x"]}]}"#, "field_data[0].name"),
            (
                br#"{"id": "1", "field_data": [], "custom_disclaimer_responses": [{"is_checked": "x"}]}"#,
                "is_checked",
            ),
        ] {
            let e = parse_lead(body, &cx).unwrap_err();
            assert!(e.message.contains(what), "{}", e.message);
        }
    }
}
