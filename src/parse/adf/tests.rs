#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;

use super::parse;
use crate::parse::{ParseContext, Record};

fn sample() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples/adf/adf_lead.xml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn get<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_str())
}

fn one(raw: &[u8]) -> Record {
    let out = parse(raw, &ParseContext::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.records.len(), 1);
    out.records.into_iter().next().unwrap()
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(raw).replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

#[test]
fn the_sample_maps_customer_vehicles_and_metadata() {
    for raw in [sample(), crlf(&sample())] {
        let r = one(&raw);
        assert_eq!(get(&r, "vendor_lead_id"), Some("EA-2026-114"));
        assert_eq!(get(&r, "adf_id_source"), Some("ExampleAutoSite"));
        assert_eq!(get(&r, "adf_status"), Some("new"));
        assert_eq!(get(&r, "requestdate"), Some("2026-10-05T14:22:09-05:00"));
        assert_eq!(get(&r, "first_name"), Some("Dana"));
        assert_eq!(get(&r, "last_name"), Some("Whitfield"));
        assert_eq!(get(&r, "email"), Some("dana.whitfield@example.com"));
        assert_eq!(get(&r, "phone"), Some("(614) 555-0134"));
        assert_eq!(get(&r, "phone_type"), Some("voice"));
        assert_eq!(get(&r, "phone_2"), Some("614-555-0188"));
        assert_eq!(get(&r, "phone_2_type"), Some("cellphone"));
        assert_eq!(get(&r, "street"), Some("77 Elm Street"));
        assert_eq!(get(&r, "city"), Some("Columbus"));
        assert_eq!(get(&r, "state"), Some("OH"));
        assert_eq!(get(&r, "postal_code"), Some("43215"));
        assert_eq!(get(&r, "country"), Some("US"));
        assert_eq!(get(&r, "product"), Some("2026 Subaru Outback Premium"));
        assert_eq!(get(&r, "vin"), Some("4S4BTAFC0R3100001"));
        assert_eq!(get(&r, "vehicle_price"), Some("36450 USD"));
        assert_eq!(get(&r, "trade_in"), Some("2017 Honda Civic"));
        assert_eq!(get(&r, "trade_in_odometer"), Some("88120 mi"));
        assert_eq!(get(&r, "timeframe"), Some("Within 2 weeks"));
        assert!(get(&r, "comments").unwrap().starts_with("Is the Outback available in blue?"));
        assert_eq!(get(&r, "adf_vendor"), Some("Example Subaru of Columbus"));
        assert_eq!(get(&r, "adf_provider"), Some("ExampleAutoSite"));
        // The dealer's and the site's contacts are nowhere in the record.
        let all: Vec<&str> = r.iter().filter_map(|(_, v)| v.as_str()).collect();
        for theirs in
            ["internet-sales@dealer.example", "614-555-0100", "leads@autosite.example", "Sales Desk"]
        {
            assert!(!all.contains(&theirs), "{theirs} leaked into the lead");
        }
    }
}

#[test]
fn the_spec_examples_malformations_are_tolerated() {
    let doc = "<?adf version=\"1.0\"?>\n<?xml version=“1.0” encoding=“UTF-8”?>\n<adf>\n<prospect status=resend>\n\
               <id sequence=1 source=\"Site\">X-1</id>\n<customer><contact><name part=full>Ann Lee</name>\
               <phone>555-0101</phone></contact></customer></prospect></adf>";
    let r = one(doc.as_bytes());
    assert_eq!(get(&r, "adf_status"), Some("resend"));
    assert_eq!(get(&r, "vendor_lead_id"), Some("X-1"));
    assert_eq!(get(&r, "adf_id_source"), Some("Site"));
    assert_eq!(get(&r, "full_name"), Some("Ann Lee"));
    // The PI after the declaration, as in the spec.
    let after =
        "<?xml version=\"1.0\"?>\n<?adf version=\"1.0\"?>\n<adf><prospect><id>1</id></prospect></adf>";
    assert_eq!(get(&one(after.as_bytes()), "vendor_lead_id"), Some("1"));
}

#[test]
fn other_malformations_are_refused_with_a_position() {
    let cases: &[(&str, u64, u64, &str)] = &[
        ("<adf>\n<prospect>\n<id>1</idx>\n</prospect></adf>", 3, 6, "does not match"),
        ("<adf>\n  <prospect><id>1</id></prospect>\n", 3, 1, "ends before"),
        ("<!DOCTYPE adf [<!ENTITY x \"y\">]>\n<adf/>", 1, 1, "DOCTYPE"),
        ("<adf>\n<prospect><id>&bogus;</id></prospect></adf>", 2, 15, "&bogus;"),
        ("<adf>\n<prospect checked><id>1</id></prospect></adf>", 2, 18, "without `=`"),
        ("<adf><prospect status=\"new><id>1</id></prospect></adf>", 1, 6, "not closed"),
        ("<lead><prospect/></lead>", 1, 1, "not <adf>"),
        ("<adf></adf>", 0, 0, "no <prospect>"),
        ("<adf><prospect/></adf><adf/>", 1, 23, "second root"),
    ];
    for (doc, line, column, needle) in cases {
        let e = parse(doc.as_bytes(), &ParseContext::default()).unwrap_err();
        assert!(e.message.contains(needle), "{doc:?}: {e}");
        if *line > 0 {
            assert_eq!((e.line, e.column), (Some(*line), Some(*column)), "{doc:?}: {e}");
        }
    }
}

#[test]
fn several_prospects_are_a_batch_and_fax_is_not_a_phone() {
    let doc = "<adf><prospect><id>1</id><customer><contact><name part=\"first\">A</name>\
               <phone type=\"fax\">555-0100</phone><phone>555-0101</phone></contact></customer></prospect>\
               <prospect><id>2</id></prospect></adf>";
    let out = parse(doc.as_bytes(), &ParseContext::default()).unwrap();
    assert!(out.batch);
    assert_eq!(out.records.len(), 2);
    assert_eq!(get(&out.records[0], "fax"), Some("555-0100"));
    assert_eq!(get(&out.records[0], "phone"), Some("555-0101"));
    assert_eq!(get(&out.records[1], "vendor_lead_id"), Some("2"));
}

#[test]
fn depth_is_bounded() {
    let doc = format!("<adf>{}{}</adf>", "<a>".repeat(100), "</a>".repeat(100));
    let e = parse(doc.as_bytes(), &ParseContext::default()).unwrap_err();
    assert!(e.message.contains("too deeply"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_mutated_samples(
        cut in 0usize..2000,
        insert in proptest::collection::vec(any::<u8>(), 0..8),
        at in 0usize..2000,
    ) {
        let mut raw = sample();
        let at = at.min(raw.len());
        raw.splice(at..at, insert);
        raw.truncate(cut.max(1).min(raw.len()));
        let _result = parse(&raw, &ParseContext::default());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _result = parse(&raw, &ParseContext::default());
    }
}

#[test]
fn values_are_strings() {
    let r = one(&sample());
    assert!(r.iter().all(|(_, v)| matches!(v, Value::String(_))));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adf").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixtures_by_shape() {
    let r = one(&fixture("spec-example-malformations.xml"));
    assert_eq!(get(&r, "adf_status"), Some("resend"));
    assert_eq!(get(&r, "adf_id_source"), Some("Site"));
    assert_eq!(get(&r, "phone_type"), Some("voice"));
    let e = parse(&fixture("unclosed-root-end-tag.xml"), &ParseContext::default()).unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
}
