//! Whole-record tests: the sample payloads' expected extractions, aliases, and odd input.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::lead::FIELD_NAMES;

/// `tests/fixtures/samples/http/json_lead.json`.
const JSON_LEAD: &str = r#"{
  "FirstName": "  maría josé ",
  "LastName": "O'Neil-Ruiz",
  "Email": "MJ.ONeil@Example.COM ",
  "Phone": "(415) 555-0142",
  "mobile": "415.555.0199 ext. 7",
  "Address1": "1200 Market St",
  "Address2": "Suite 400",
  "City": "San Francisco",
  "State": "California",
  "Zip": "94102-4801",
  "Country": "United States",
  "product": "solar",
  "comments": "Roof is 12 years old; prefers calls after 5pm.",
  "lead_id": "VND-000981",
  "ip": "203.0.113.45",
  "tcpa_consent": "yes",
  "trustedform_cert_url": "https://cert.trustedform.com/0c1d2e3f4a5b6c7d8e9f",
  "utm": {"source": "google", "campaign": "spring-solar"},
  "household_income": 145000
}"#;

/// `tests/fixtures/samples/http/form_lead.txt`.
const FORM_LEAD: &str = "first_name=Lee&last_name=Tanaka&email=lee.tanaka%40example.org&phone_1=512-555-0117&postal_code=78701&state=tx&mortgage.loan.amount=350000&mortgage.property.type=condo&comments=Looking+to+refinance%2C+rate+%3C+6%25&vendor_lead_id=A-77";

/// `tests/fixtures/samples/csv/leads.csv`'s header, BOM included, as a CSV parser hands it over.
const CSV_HEADER: [&str; 8] = [
    "\u{feff}First Name",
    "Last Name",
    "E-mail Address",
    "Phone Number",
    "Zip Code",
    "State",
    "Product",
    "Notes",
];

fn json_record(src: &str) -> Record {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(src) else {
        panic!("test JSON is not an object");
    };
    let mut out = Record::new();
    crate::parse::flatten_object("", &obj, &mut out);
    out
}

fn form_record(src: &str) -> Record {
    form_urlencoded::parse(src.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn csv_row(cells: [&str; 8]) -> Record {
    CSV_HEADER.iter().zip(cells).map(|(h, c)| ((*h).to_owned(), Value::String(c.to_owned()))).collect()
}

fn record(pairs: &[(&str, Value)]) -> Record {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn norm(record: &Record) -> Normalized {
    normalize(record, &NormalizeOptions::default())
}

fn fields(problems: &[Problem]) -> Vec<(&str, &str)> {
    problems.iter().map(|p| (p.field.as_str(), p.code.as_str())).collect()
}

#[test]
fn json_sample_lead() {
    let n = norm(&json_record(JSON_LEAD));
    assert_eq!(n.errors, vec![], "errors");
    assert_eq!(n.warnings, vec![], "warnings");
    let lead = n.lead;
    assert_eq!(lead.first_name.as_deref(), Some("María José"));
    assert_eq!(lead.last_name.as_deref(), Some("O'Neil-Ruiz"));
    assert_eq!(lead.email.as_deref(), Some("mj.oneil@example.com"));
    assert_eq!(lead.phone.as_deref(), Some("+14155550142"));
    assert_eq!(lead.phone_ext, None);
    assert_eq!(lead.phone_2.as_deref(), Some("+14155550199"));
    assert_eq!(lead.phone_2_ext.as_deref(), Some("7"));
    assert_eq!(lead.street.as_deref(), Some("1200 Market St"));
    assert_eq!(lead.street_2.as_deref(), Some("Suite 400"));
    assert_eq!(lead.city.as_deref(), Some("San Francisco"));
    assert_eq!(lead.state.as_deref(), Some("CA"));
    assert_eq!(lead.postal_code.as_deref(), Some("94102-4801"));
    assert_eq!(lead.country.as_deref(), Some("US"));
    assert_eq!(lead.product.as_deref(), Some("solar"));
    assert_eq!(lead.comments.as_deref(), Some("Roof is 12 years old; prefers calls after 5pm."));
    assert_eq!(lead.vendor_lead_id.as_deref(), Some("VND-000981"));
    assert_eq!(lead.ip_address.as_deref(), Some("203.0.113.45"));
    let consent = lead.consent.unwrap_or_default();
    assert_eq!(consent.given, Some(true));
    assert_eq!(
        consent.trustedform_cert_url.as_deref(),
        Some("https://cert.trustedform.com/0c1d2e3f4a5b6c7d8e9f")
    );
    let custom: Vec<(&str, &Value)> = lead.custom.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        custom,
        vec![
            ("utm.source", &json!("google")),
            ("utm.campaign", &json!("spring-solar")),
            ("household_income", &json!(145000)),
        ]
    );
}

#[test]
fn form_sample_lead() {
    let n = norm(&form_record(FORM_LEAD));
    assert_eq!((n.errors, n.warnings), (vec![], vec![]));
    let lead = n.lead;
    assert_eq!(lead.first_name.as_deref(), Some("Lee"));
    assert_eq!(lead.last_name.as_deref(), Some("Tanaka"));
    assert_eq!(lead.email.as_deref(), Some("lee.tanaka@example.org"));
    assert_eq!(lead.phone.as_deref(), Some("+15125550117"));
    assert_eq!(lead.postal_code.as_deref(), Some("78701"));
    assert_eq!(lead.state.as_deref(), Some("TX"));
    assert_eq!(lead.comments.as_deref(), Some("Looking to refinance, rate < 6%"));
    assert_eq!(lead.vendor_lead_id.as_deref(), Some("A-77"));
    assert_eq!(lead.country, None);
    assert_eq!(lead.custom.get("mortgage.loan.amount"), Some(&json!("350000")));
    assert_eq!(lead.custom.get("mortgage.property.type"), Some(&json!("condo")));
    assert_eq!(lead.custom.len(), 2);
}

#[test]
fn csv_row_1_accepted() {
    let n = norm(&csv_row([
        "Ava",
        "Lindqvist",
        "ava.lindqvist@example.com",
        "(303) 555-0161",
        "80202",
        "CO",
        "solar",
        "Prefers email, not phone",
    ]));
    assert_eq!((n.errors, n.warnings), (vec![], vec![]));
    let lead = n.lead;
    assert_eq!(lead.first_name.as_deref(), Some("Ava"));
    assert_eq!(lead.last_name.as_deref(), Some("Lindqvist"));
    assert_eq!(lead.email.as_deref(), Some("ava.lindqvist@example.com"));
    assert_eq!(lead.phone.as_deref(), Some("+13035550161"));
    assert_eq!(lead.postal_code.as_deref(), Some("80202"));
    assert_eq!(lead.state.as_deref(), Some("CO"));
    assert_eq!(lead.product.as_deref(), Some("solar"));
    assert_eq!(lead.comments.as_deref(), Some("Prefers email, not phone"));
    assert!(lead.custom.is_empty(), "{:?}", lead.custom);
}

#[test]
fn csv_row_2_state_name_and_shouting_email() {
    let n = norm(&csv_row([
        "Ben",
        "Achebe",
        "BEN.ACHEBE@EXAMPLE.COM",
        "303-555-0162",
        "80203",
        "Colorado",
        "solar",
        "",
    ]));
    assert_eq!((n.errors, n.warnings), (vec![], vec![]));
    let lead = n.lead;
    assert_eq!(lead.email.as_deref(), Some("ben.achebe@example.com"));
    assert_eq!(lead.state.as_deref(), Some("CO"));
    assert_eq!(lead.phone.as_deref(), Some("+13035550162"));
    assert_eq!(lead.comments, None);
    assert!(lead.custom.is_empty());
}

#[test]
fn csv_row_3_rejected_on_email_and_postal_code() {
    let n = norm(&csv_row([
        "Chloé",
        "Martín",
        "chloe@example",
        "303.555.0163",
        "8020",
        "CO",
        "solar",
        "Bad e-mail and ZIP: row must be rejected, file continues",
    ]));
    assert_eq!(fields(&n.errors), vec![("email", "invalid"), ("postal_code", "invalid")]);
    assert!(n.errors[0].message.contains("`chloe@example`"), "{}", n.errors[0].message);
    assert!(n.errors[1].message.contains("`8020`"), "{}", n.errors[1].message);
    assert_eq!(n.warnings, vec![]);
    let lead = n.lead;
    assert_eq!(lead.first_name.as_deref(), Some("Chloé"));
    assert_eq!(lead.last_name.as_deref(), Some("Martín"));
    assert_eq!(lead.phone.as_deref(), Some("+13035550163"));
    // Rejected values are not canonical, and not lost.
    assert_eq!(lead.email, None);
    assert_eq!(lead.postal_code, None);
    assert_eq!(lead.custom.get("E-mail Address"), Some(&json!("chloe@example")));
    assert_eq!(lead.custom.get("Zip Code"), Some(&json!("8020")));
}

#[test]
fn csv_row_4_without_phone_keeps_formula_text_verbatim() {
    let formula = r#"=HYPERLINK("http://evil.example","click")"#;
    let n = norm(&csv_row(["Dev", "Patel", "dev.patel@example.com", "", "80205", "CO", "roofing", formula]));
    assert_eq!((n.errors, n.warnings), (vec![], vec![]));
    assert_eq!(n.lead.phone, None);
    assert_eq!(n.lead.comments.as_deref(), Some(formula));
    assert_eq!(n.lead.product.as_deref(), Some("roofing"));
}

#[test]
fn csv_row_5_same_person_as_row_1() {
    let row = |phone: &str, notes: &str| {
        norm(&csv_row([
            "Ava",
            "Lindqvist",
            "ava.lindqvist@example.com",
            phone,
            "80202",
            "CO",
            "solar",
            notes,
        ]))
        .lead
    };
    let first = row("(303) 555-0161", "Prefers email, not phone");
    let fifth = row("3035550161", "Duplicate of row 1");
    assert_eq!(fifth.phone, first.phone);
    assert_eq!(fifth.email, first.email);
}

#[test]
fn field_enum_matches_canonical_names() {
    let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names, FIELD_NAMES);
    for name in FIELD_NAMES {
        assert_eq!(Target::parse(name), Ok(Target::Field(Field::from_name(name).unwrap_or(Field::Email))));
    }
}

#[test]
fn aliases_ignore_case_and_separators() {
    let a = Aliases::default();
    for name in
        ["First Name", "first_name", "FirstName", "first-name", "FNAME", "given name", "\u{feff}First Name"]
    {
        assert_eq!(a.resolve(name), Some(&Target::Field(Field::FirstName)), "{name}");
    }
    for name in ["E-mail Address", "email_address", "EMAIL", "e-mail", "Mail"] {
        assert_eq!(a.resolve(name), Some(&Target::Field(Field::Email)), "{name}");
    }
    for name in ["Zip Code", "zip_code", "ZIP", "postal", "PostCode"] {
        assert_eq!(a.resolve(name), Some(&Target::Field(Field::PostalCode)), "{name}");
    }
    for name in ["Phone", "phone_1", "Phone Number", "mobile", "Cell Phone", "phone2", "alt-phone"] {
        assert_eq!(a.resolve(name), Some(&Target::AnyPhone), "{name}");
    }
    assert_eq!(a.resolve("phone"), Some(&Target::Field(Field::Phone)));
    assert_eq!(a.resolve("phone_2"), Some(&Target::Field(Field::Phone2)));
    assert_eq!(a.resolve("Full Name"), Some(&Target::FullName));
    assert_eq!(a.resolve("lead_id"), Some(&Target::Field(Field::VendorLeadId)));
    assert_eq!(a.resolve("universal_leadid"), Some(&Target::Consent(ConsentPart::JornayaLeadid)));
    assert_eq!(a.resolve("xxTrustedFormCertUrl"), Some(&Target::Consent(ConsentPart::TrustedformCertUrl)));
    assert_eq!(a.resolve("consent.text"), Some(&Target::Consent(ConsentPart::Text)));
    assert_eq!(a.resolve("TCPA Consent"), Some(&Target::Consent(ConsentPart::Given)));
    for custom in ["campaign", "utm.source", "household_income", "contact.email", "vendor.name", "source_id"]
    {
        assert_eq!(a.resolve(custom), None, "{custom}");
    }
}

#[test]
fn builtin_spellings_do_not_contradict_each_other() {
    let mut seen: BTreeMap<String, (&str, &Target)> = BTreeMap::new();
    for (spelling, target) in aliases::BUILTIN_SPELLINGS {
        let k = aliases::key(spelling);
        assert!(!k.is_empty(), "{spelling}");
        if let Some((other, t)) = seen.insert(k.clone(), (spelling, target)) {
            assert_eq!(t, target, "`{spelling}` and `{other}` share key {k}");
        }
    }
}

#[test]
fn overrides_win_and_unknown_targets_are_named() {
    let overrides: BTreeMap<String, String> = [
        ("Campaign".to_owned(), "product".to_owned()),
        ("source_id".to_owned(), "vendor_lead_id".to_owned()),
        ("name".to_owned(), "custom.display_name".to_owned()),
        ("email".to_owned(), "custom.contact".to_owned()),
        ("Disclosure".to_owned(), "consent.text".to_owned()),
    ]
    .into();
    let a = Aliases::with_overrides(&overrides).unwrap_or_default();
    assert_eq!(a.resolve("campaign"), Some(&Target::Field(Field::Product)));
    assert_eq!(a.resolve("SourceID"), Some(&Target::Field(Field::VendorLeadId)));
    assert_eq!(a.resolve("Name"), Some(&Target::Custom("display_name".into())));
    assert_eq!(a.resolve("email"), Some(&Target::Custom("contact".into())));
    assert_eq!(a.resolve("disclosure"), Some(&Target::Consent(ConsentPart::Text)));

    let bad: BTreeMap<String, String> = [("zipcode".to_owned(), "zip".to_owned())].into();
    let err = Aliases::with_overrides(&bad).err().unwrap_or_default();
    assert!(err.contains("unknown target `zip`"), "{err}");
    let bad: BTreeMap<String, String> = [("x".to_owned(), "custom.".to_owned())].into();
    assert!(Aliases::with_overrides(&bad).is_err());
    let bad: BTreeMap<String, String> = [("--".to_owned(), "email".to_owned())].into();
    assert!(Aliases::with_overrides(&bad).is_err());
}

#[test]
fn overrides_apply_in_normalize() {
    let overrides: BTreeMap<String, String> = [
        ("source_id".to_owned(), "vendor_lead_id".to_owned()),
        ("nick".to_owned(), "custom.nickname".to_owned()),
    ]
    .into();
    let opts = NormalizeOptions {
        aliases: Aliases::with_overrides(&overrides).unwrap_or_default(),
        ..NormalizeOptions::default()
    };
    let n = normalize(&record(&[("source_id", json!("XML-5521")), ("nick", json!("PJ"))]), &opts);
    assert_eq!(n.lead.vendor_lead_id.as_deref(), Some("XML-5521"));
    assert_eq!(n.lead.custom.get("nickname"), Some(&json!("PJ")));
}

#[test]
fn phones_fill_slots_in_document_order_and_a_third_goes_to_custom() {
    let n = norm(&record(&[
        ("cell", json!("303-555-0161")),
        ("Work Phone", json!("303-555-0162")),
        ("Home Phone", json!("303-555-0163")),
    ]));
    assert_eq!(n.lead.phone.as_deref(), Some("+13035550161"));
    assert_eq!(n.lead.phone_2.as_deref(), Some("+13035550162"));
    assert_eq!(n.lead.custom.get("Home Phone"), Some(&json!("303-555-0163")));
}

#[test]
fn explicit_phone_names_keep_their_slot() {
    let n = norm(&record(&[("mobile", json!("303-555-0161")), ("phone", json!("303-555-0162"))]));
    assert_eq!(n.lead.phone.as_deref(), Some("+13035550162"));
    assert_eq!(n.lead.phone_2.as_deref(), Some("+13035550161"));
}

#[test]
fn invalid_phone_is_kept_raw_with_a_warning() {
    let n = norm(&record(&[("phone", json!("  555-0142 ")), ("phone_2", json!("1-800-FLOWERS"))]));
    assert_eq!(n.errors, vec![]);
    assert_eq!(fields(&n.warnings), vec![("phone", "invalid"), ("phone_2", "invalid")]);
    assert_eq!(n.lead.phone.as_deref(), Some("555-0142"));
    assert_eq!(n.lead.phone_2.as_deref(), Some("1-800-FLOWERS"));
}

#[test]
fn phone_as_json_number_and_explicit_extension() {
    let n = norm(&record(&[("phone", json!(4155550142u64)), ("ext", json!(12))]));
    assert_eq!(n.lead.phone.as_deref(), Some("+14155550142"));
    assert_eq!(n.lead.phone_ext.as_deref(), Some("12"));
}

#[test]
fn phones_use_the_leads_own_country() {
    let n = norm(&record(&[("phone", json!("07400 123456")), ("country", json!("UK"))]));
    assert_eq!(n.lead.phone.as_deref(), Some("+447400123456"));
    assert_eq!(n.lead.country.as_deref(), Some("GB"));
    assert_eq!(n.warnings, vec![]);
}

#[test]
fn international_phone_with_us_default() {
    let n = norm(&record(&[("phone", json!("+44 7400 123456"))]));
    assert_eq!(n.lead.phone.as_deref(), Some("+447400123456"));
    assert_eq!(n.warnings, vec![]);
}

#[test]
fn full_name_splits_and_given_names_win() {
    let n = norm(&record(&[("FULL_NAME", json!("sam okafor"))]));
    assert_eq!(n.lead.first_name.as_deref(), Some("Sam"));
    assert_eq!(n.lead.last_name.as_deref(), Some("Okafor"));
    assert!(n.lead.custom.is_empty());

    let n = norm(&record(&[("name", json!("Okafor, Samuel")), ("first_name", json!("Sam"))]));
    assert_eq!(n.lead.first_name.as_deref(), Some("Sam"));
    assert_eq!(n.lead.last_name.as_deref(), Some("Okafor"));
    // The unused "Samuel" is not lost.
    assert_eq!(n.lead.custom.get("name"), Some(&json!("Okafor, Samuel")));
}

#[test]
fn us_postal_codes() {
    let zip = |v: Value| norm(&record(&[("zip", v)]));
    assert_eq!(zip(json!(2134)).lead.postal_code.as_deref(), Some("02134"));
    assert_eq!(zip(json!("941024801")).lead.postal_code.as_deref(), Some("94102-4801"));
    let bad = zip(json!("SW1A 1AA"));
    assert_eq!(fields(&bad.errors), vec![("postal_code", "invalid")]);
    assert_eq!(bad.lead.custom.get("zip"), Some(&json!("SW1A 1AA")));
}

#[test]
fn non_us_postal_codes_are_only_tidied() {
    let n = norm(&record(&[("zip", json!(" sw1a 1aa ")), ("country", json!("England"))]));
    assert_eq!(n.errors, vec![]);
    assert_eq!(n.lead.postal_code.as_deref(), Some("SW1A 1AA"));
    let n = normalize(
        &record(&[("zip", json!("k1a 0b1"))]),
        &NormalizeOptions { default_region: "CA".into(), ..NormalizeOptions::default() },
    );
    assert_eq!(n.errors, vec![]);
    assert_eq!(n.lead.postal_code.as_deref(), Some("K1A 0B1"));
}

#[test]
fn zip_codes_apply_to_us_territories() {
    let n =
        norm(&record(&[("zip", json!("00901")), ("country", json!("Puerto Rico")), ("state", json!("PR"))]));
    assert_eq!((n.errors, n.warnings), (vec![], vec![]));
    assert_eq!(n.lead.postal_code.as_deref(), Some("00901"));
    assert_eq!(n.lead.country.as_deref(), Some("PR"));
}

#[test]
fn states_depend_on_country() {
    let state = |pairs: &[(&str, Value)]| norm(&record(pairs));
    let n = state(&[("state", json!("ontario")), ("country", json!("Canada"))]);
    assert_eq!(n.lead.state.as_deref(), Some("ON"));
    let n = state(&[("state", json!("Quebec"))]);
    assert_eq!(n.lead.state.as_deref(), Some("QC"));
    let n = state(&[("province", json!("Bavaria")), ("country", json!("DE"))]);
    assert_eq!((n.lead.state.as_deref(), n.warnings.len()), (Some("Bavaria"), 0));
    let n = state(&[("state", json!("Calfornia"))]);
    assert_eq!(n.lead.state.as_deref(), Some("Calfornia"));
    assert_eq!(fields(&n.warnings), vec![("state", "invalid")]);
    let n = state(&[("st", json!("zz"))]);
    assert_eq!(n.lead.state.as_deref(), Some("ZZ"));
}

#[test]
fn unknown_country_is_kept_with_a_warning() {
    let n = norm(&record(&[("country", json!(" Atlantis ")), ("zip", json!("ABC"))]));
    assert_eq!(n.lead.country.as_deref(), Some("Atlantis"));
    assert_eq!(fields(&n.warnings), vec![("country", "invalid")]);
    // No US rule for a lead that says it is elsewhere.
    assert_eq!(n.errors, vec![]);
    assert_eq!(n.lead.postal_code.as_deref(), Some("ABC"));
}

#[test]
fn consent_flags_and_evidence() {
    for (raw, given) in [
        (json!("yes"), true),
        (json!("Y"), true),
        (json!(true), true),
        (json!(1), true),
        (json!("on"), true),
        (json!("checked"), true),
        (json!("no"), false),
        (json!("0"), false),
        (json!(false), false),
        (json!("off"), false),
    ] {
        let n = norm(&record(&[("tcpa", raw.clone())]));
        assert_eq!(n.lead.consent.and_then(|c| c.given), Some(given), "{raw}");
    }
    let text = "  By clicking, I agree…  ";
    let n = norm(&record(&[
        ("consent_language", json!(text)),
        ("consent.timestamp", json!("2026-03-01T12:00:00Z")),
        ("xxTrustedFormPingUrl", json!("https://ping.trustedform.com/x")),
        ("universal_leadid", json!("ABCD-1234")),
        ("optin", json!("maybe")),
    ]));
    let c = n.lead.consent.clone().unwrap_or_default();
    assert_eq!(c.text.as_deref(), Some(text));
    assert_eq!(c.timestamp.as_deref(), Some("2026-03-01T12:00:00Z"));
    assert_eq!(c.trustedform_ping_url.as_deref(), Some("https://ping.trustedform.com/x"));
    assert_eq!(c.jornaya_leadid.as_deref(), Some("ABCD-1234"));
    assert_eq!(c.given, None);
    assert_eq!(fields(&n.warnings), vec![("consent", "invalid")]);
    assert_eq!(n.lead.custom.get("optin"), Some(&json!("maybe")));
}

#[test]
fn vendor_lead_id_numbers_stay_exact() {
    let n = norm(&record(&[("lead_id", json!(12345678901234567890u64))]));
    assert_eq!(n.lead.vendor_lead_id.as_deref(), Some("12345678901234567890"));
    let n = norm(&record(&[("lead_id", json!(" A  7 "))]));
    assert_eq!(n.lead.vendor_lead_id.as_deref(), Some("A  7"));
}

#[test]
fn plain_fields_are_tidied() {
    let n = norm(&record(&[
        ("city", json!("  San   Francisco ")),
        ("company", json!(" Acme\tInc ")),
        ("comments", json!("  line one\n\nline  two  ")),
        ("Job Title", json!(42)),
        ("ip", json!("2001:DB8::1")),
        ("user_agent", json!("Mozilla/5.0  (X11)")),
    ]));
    let lead = n.lead;
    assert_eq!(lead.city.as_deref(), Some("San Francisco"));
    assert_eq!(lead.company.as_deref(), Some("Acme Inc"));
    assert_eq!(lead.comments.as_deref(), Some("line one\n\nline  two"));
    assert_eq!(lead.title.as_deref(), Some("42"));
    assert_eq!(lead.ip_address.as_deref(), Some("2001:db8::1"));
    assert_eq!(lead.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
    assert_eq!(n.warnings, vec![]);
}

#[test]
fn bad_ip_is_kept_with_a_warning() {
    let n = norm(&record(&[("ip", json!("203.0.113.999"))]));
    assert_eq!(n.lead.ip_address.as_deref(), Some("203.0.113.999"));
    assert_eq!(fields(&n.warnings), vec![("ip_address", "invalid")]);
}

#[test]
fn empty_and_null_are_absent() {
    let n = norm(&record(&[
        ("email", json!("")),
        ("phone", json!("   ")),
        ("city", Value::Null),
        ("utm.term", json!("")),
        ("tags", json!([])),
    ]));
    assert_eq!(n, Normalized::default());
}

#[test]
fn duplicates_are_kept_under_custom() {
    let n = norm(&record(&[
        ("zip", json!("80202")),
        ("postal_code", json!("80203")),
        ("Email", json!("a@example.com")),
        ("email", json!("a@example.com")),
    ]));
    assert_eq!(n.lead.postal_code.as_deref(), Some("80202"));
    assert_eq!(n.lead.custom.get("postal_code"), Some(&json!("80203")));
    assert_eq!(n.lead.custom.get("email"), Some(&json!("a@example.com")));
    // Only the differing pair is worth a warning.
    assert_eq!(fields(&n.warnings), vec![("postal_code", "conflict")]);
}

#[test]
fn repeated_custom_names_become_a_list() {
    let n = norm(&record(&[
        ("interest_tag", json!("a")),
        ("interest_tag", json!("b")),
        ("interest_tag", json!("c")),
    ]));
    assert_eq!(n.lead.custom.get("interest_tag"), Some(&json!(["a", "b", "c"])));
    // A list that was sent as a list stays one value.
    let n = norm(&record(&[("answers", json!(["x", "y"])), ("answers", json!("z"))]));
    assert_eq!(n.lead.custom.get("answers"), Some(&json!([["x", "y"], "z"])));
}

#[test]
fn lists_for_canonical_fields_go_to_custom_with_a_warning() {
    let n = norm(&record(&[("email", json!(["a@example.com", "b@example.com"]))]));
    assert_eq!(n.lead.email, None);
    assert_eq!(n.lead.custom.get("email"), Some(&json!(["a@example.com", "b@example.com"])));
    assert_eq!(fields(&n.warnings), vec![("email", "invalid")]);
}

/// A tiny deterministic generator, so the odd-input test needs no extra crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next()).unwrap_or(0) % items.len();
        items[i]
    }
}

#[test]
fn odd_input_never_panics() {
    let pieces = [
        "",
        " ",
        "+",
        "00",
        "0",
        "1",
        "9",
        "(",
        ")",
        "-",
        ".",
        "ext",
        "x",
        "#",
        ";ext=",
        "@",
        ",",
        "'",
        "’",
        "\u{0}",
        "\u{feff}",
        "\u{202e}",
        "\u{fe0f}",
        "ß",
        "İ",
        "ǅ",
        "é",
        "٣",
        "１",
        "👩‍👩‍👧",
        "\n",
        "\t",
        "tel:",
        "mailto:",
        "xn--",
        "Calif.",
        "USA",
        "a",
        "Z",
        "4155550142",
        "+1",
        "+44",
        "+999",
        "+0",
        "999999999999999999999",
    ];
    let names = [
        "email",
        "phone",
        "mobile",
        "zip",
        "state",
        "country",
        "name",
        "first_name",
        "ip",
        "consent",
        "lead_id",
        "utm.x",
    ];
    let mut rng = Lcg(7);
    for round in 0..3000 {
        let mut rec = Record::new();
        for _ in 0..4 {
            let mut s = String::new();
            for _ in 0..(rng.next() % 12) {
                s.push_str(rng.pick(&pieces));
            }
            rec.push((rng.pick(&names).to_owned(), Value::String(s)));
        }
        let region = ["US", "GB", "CA", "DE", "", "zz", "ÜS"][round % 7];
        let opts = NormalizeOptions { default_region: region.to_owned(), ..NormalizeOptions::default() };
        let n = normalize(&rec, &opts);
        // Whatever went in, what came out keeps the stage's promises.
        if let Some(email) = &n.lead.email {
            assert!(Email::parse(email, true).is_ok(), "{email:?} from {rec:?}");
        }
        if let Some(phone) = &n.lead.phone {
            let e164 = phone.starts_with('+') && phone[1..].bytes().all(|b| b.is_ascii_digit());
            let warned = n.warnings.iter().any(|w| w.field == "phone");
            assert!(e164 || warned, "{phone:?} from {rec:?}");
        }
    }
    // Digit strings of every length straight into the phone parser.
    for len in 0..40 {
        for region in ["US", "GB", "IN", "BR", "CN", "DE", "AU", "001"] {
            let digits: String = (0..len).map(|i| char::from(b'0' + ((i * 7 + len) % 10) as u8)).collect();
            for raw in [digits.clone(), format!("+{digits}"), format!("00{digits}"), format!("011{digits}")] {
                if let Ok(p) = Phone::parse(&raw, region) {
                    assert!(p.e164().starts_with('+'), "{raw} → {p}");
                }
            }
        }
    }
}

#[test]
fn huge_values_are_handled_and_quoted_briefly() {
    let huge = "x".repeat(2_000_000);
    let n = norm(&record(&[
        ("email", json!(huge.clone())),
        ("phone", json!(huge.clone())),
        ("zip", json!(huge.clone())),
        ("state", json!(huge.clone())),
        ("first_name", json!(huge.clone())),
    ]));
    assert_eq!(fields(&n.errors), vec![("email", "invalid"), ("postal_code", "invalid")]);
    for p in n.errors.iter().chain(&n.warnings) {
        assert!(p.message.len() < 300, "{} message is {} bytes", p.field, p.message.len());
    }
    assert_eq!(n.lead.first_name.map(|s| s.len()), Some(huge.len()));
}
