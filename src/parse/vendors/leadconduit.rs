//! LeadConduit-compatible posts: what vendors already integrated with a LeadConduit flow
//! send, so they can switch by changing a URL.
//!
//! The body is a form post (the usual case), a JSON object or an XML `<lead>` document,
//! told apart by its first character. Field names are LeadConduit's, matched without
//! regard to case: `first_name`, `last_name`, `email`, `phone_1`/`phone_2` (→ `phone`,
//! `phone_2`; `phone_3` → `custom`), `address_1`/`address_2` (→ `street`, `street_2`),
//! `city`, `state`, `postal_code`, `country`, `company.name` (→ `company`), `title`,
//! `comments`, `reference` (the vendor's lead id → `vendor_lead_id`),
//! `trustedform_cert_url`, `trustedform_ping_url`, `universal_leadid`/`leadid_token`
//! (Jornaya) kept verbatim under `consent`, `ip_address`, `user_agent`, `landing_page_url`.
//! Any other name goes through the source's aliases (as LeadConduit's field mappings would).
//!
//! Tolerated: in JSON, raw line breaks in strings and trailing commas, nested objects
//! (flattened with dots: `{"company": {"name": …}}` is `company.name`), numbers where
//! strings belong. Refused: more than one lead per post (LeadConduit takes one), and
//! whatever the form, JSON or XML reader refuses (with its line and column).

use serde_json::Value;

use super::lenient_json::{self, Tolerance};
use super::{custom, kind};
use crate::parse::{ParseContext, ParseError, ParseOutput, Record, flatten_object, form, strip_bom, xml};

const TOLERANCE: Tolerance = Tolerance::HAND_MADE;

/// LeadConduit's name (lower-cased) → record name.
fn standard(lower: &str) -> Option<String> {
    Some(match lower {
        "first_name" => "first_name".into(),
        "last_name" => "last_name".into(),
        "email" => "email".into(),
        "phone_1" => "phone".into(),
        "phone_2" => "phone_2".into(),
        "phone_3" => custom("phone_3"),
        "address_1" => "street".into(),
        "address_2" => "street_2".into(),
        "city" => "city".into(),
        "state" => "state".into(),
        "postal_code" | "zip" => "postal_code".into(),
        "country" => "country".into(),
        "company.name" | "company" => "company".into(),
        "title" => "title".into(),
        "comments" => "comments".into(),
        "reference" => "vendor_lead_id".into(),
        "trustedform_cert_url" => "consent.trustedform_cert_url".into(),
        "trustedform_ping_url" => "consent.trustedform_ping_url".into(),
        "universal_leadid" | "leadid_token" => "consent.jornaya_leadid".into(),
        "ip_address" => "ip_address".into(),
        "user_agent" => "user_agent".into(),
        "landing_page_url" => "landing_page_url".into(),
        "dob" | "gender" => custom(lower),
        _ => return None,
    })
}

/// Parses one post into one record.
pub fn parse(raw: &[u8], cx: &ParseContext) -> Result<ParseOutput, ParseError> {
    let body = strip_bom(raw);
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    let record = match first {
        None => return Err(ParseError::new("the LeadConduit post is empty")),
        Some(b'{' | b'[') => {
            let doc = lenient_json::parse(raw, TOLERANCE, cx.max_depth)?;
            match &doc.value {
                Value::Object(obj) => {
                    let mut r = Record::new();
                    flatten_object("", obj, &mut r);
                    r
                }
                other => {
                    return Err(ParseError::new(format!(
                        "the LeadConduit post is {}, expected one lead as a JSON object",
                        kind(other)
                    )));
                }
            }
        }
        Some(b'<') => single(xml::parse(raw, cx)?)?,
        Some(_) => single(form::parse(raw, cx)?)?,
    };
    let mapped = record
        .into_iter()
        .map(|(name, value)| match standard(&name.trim().to_ascii_lowercase()) {
            Some(target) => (target, value),
            None => (name, value),
        })
        .collect();
    Ok(ParseOutput { records: vec![mapped], batch: false })
}

fn single(out: ParseOutput) -> Result<Record, ParseError> {
    if out.records.len() != 1 {
        return Err(ParseError::new(format!(
            "the post holds {} leads; LeadConduit-style posts carry one lead each",
            out.records.len()
        )));
    }
    Ok(out.records.into_iter().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(r: &Record) -> Vec<String> {
        r.iter().map(|(k, _)| k.replace(super::super::MAPPED, "~")).collect()
    }

    #[test]
    fn form_json_and_xml_posts_use_leadconduit_names() {
        let cx = ParseContext::default();
        let form =
            b"First_Name=Lee&PHONE_1=5125550117&phone_3=1&Address_1=1+Main&company.name=Acme&reference=R-9\
&trustedform_cert_url=https%3A%2F%2Fcert.trustedform.com%2Fabc&universal_leadid=LID-1&mortgage.amount=3";
        let r = &parse(form, &cx).unwrap().records[0];
        assert_eq!(
            names(r),
            [
                "first_name",
                "phone",
                "~custom:phone_3",
                "street",
                "company",
                "vendor_lead_id",
                "consent.trustedform_cert_url",
                "consent.jornaya_leadid",
                "mortgage.amount"
            ]
        );
        let json =
            b"{\"email\": \"a@example.com\", \"company\": {\"name\": \"Acme\"}, \"phone_1\": 5125550117,}";
        let r = &parse(json, &cx).unwrap().records[0];
        assert_eq!(names(r), ["email", "company", "phone"]);
        assert_eq!(r[2].1, json!(5_125_550_117u64));
        let xml = b"<lead><email>x@example.com</email><phone_1>5125550117</phone_1></lead>";
        let r = &parse(xml, &cx).unwrap().records[0];
        assert_eq!(names(r), ["email", "phone"]);
    }

    #[test]
    fn batches_and_broken_bodies_are_refused() {
        let cx = ParseContext::default();
        assert!(parse(b"[{\"a\":1}]", &cx).unwrap_err().message.contains("one lead"));
        assert!(parse(b"  ", &cx).unwrap_err().message.contains("empty"));
        let e = parse(b"{\"a\": 1\n\"b\": 2}", &cx).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(parse(b"<leads><lead><a>1</a></lead><lead><a>2</a></lead></leads>", &cx).is_err());
    }
}
