#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::lead::normalize::{NormalizeOptions, normalize};
use crate::parse::template::{Template, Templates};
use crate::parse::{ParseContext, Record};

fn sample(name: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples/email").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn no_templates() -> ParseContext {
    ParseContext::default()
}

fn shipped() -> ParseContext {
    let mut cx = ParseContext::default();
    cx.email.templates = Arc::new(Templates::shipped_only());
    cx
}

fn lf(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(raw).replace("\r\n", "\n").into_bytes()
}

fn lead(raw: &[u8], cx: &ParseContext) -> serde_json::Value {
    let out = parse(raw, cx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    let n = normalize(&out.records[0], &NormalizeOptions::default());
    serde_json::to_value(&n.lead).unwrap()
}

fn values(r: &Record) -> Vec<String> {
    r.iter().map(|(_, v)| v.as_str().unwrap_or_default().to_owned()).collect()
}

#[test]
fn mime_reads_every_part_and_decodes_headers() {
    let mail = mime::read(&sample("labelled_text.eml"), &MimeLimits::default()).unwrap();
    assert_eq!(mail.subject, "Nuevo lead – Reforma de cocina #HP-55120");
    assert_eq!(mail.from[0].address, "leads@homepros.example");
    assert_eq!(mail.message_id.as_deref(), Some("hp-55120@homepros.example"));
    assert!(mail.texts[0].contains("José Ángel Ibáñez"));
    let html = mime::read(&sample("html_table_only.eml"), &MimeLimits::default()).unwrap();
    assert!(html.texts.is_empty());
    assert_eq!(html.htmls.len(), 1);
    assert_eq!(html.reply_to[0].address, "relay-8f3k2@reply.rentfinder.example");
    let adf = mime::read(&sample("adf_attachment.eml"), &MimeLimits::default()).unwrap();
    assert_eq!(adf.attachments.len(), 1);
    assert_eq!(adf.attachments[0].filename.as_deref(), Some("lead-EA-2026-114.xml"));
}

#[test]
fn labelled_text_sample_with_its_template() {
    for raw in [sample("labelled_text.eml"), lf(&sample("labelled_text.eml"))] {
        let f = lead(&raw, &shipped());
        assert_eq!(f["first_name"], "José");
        assert_eq!(f["last_name"], "Ángel Ibáñez");
        assert_eq!(f["email"], "jose.ibanez@example.com");
        assert_eq!(f["phone"], "+12145550147");
        assert_eq!(f["phone_2"], "+12145550190");
        assert_eq!(f["street"], "4410 Ross Ave");
        assert_eq!(f["city"], "Dallas");
        assert_eq!(f["state"], "TX");
        assert_eq!(f["postal_code"], "75204");
        assert_eq!(f["product"], "Kitchen remodel");
        assert_eq!(f["vendor_lead_id"], "HP-55120");
        assert_eq!(
            f["comments"],
            "Quiero presupuesto para encimeras de cuarzo y gabinetes nuevos. La cocina mide aprox. 4 x 5 m."
        );
    }
}

#[test]
fn labelled_text_sample_generically_skips_the_footer() {
    let out = parse(&sample("labelled_text.eml"), &no_templates()).unwrap();
    let all = values(&out.records[0]).join("\n");
    assert!(!all.contains("800"), "the footer's support line leaked: {all}");
    let f = lead(&sample("labelled_text.eml"), &no_templates());
    assert_eq!(f["email"], "jose.ibanez@example.com");
    assert_eq!(f["phone"], "+12145550147");
    assert_eq!(f["phone_2"], "+12145550190");
    assert_eq!(f["city"], "Dallas");
    assert_eq!(f["postal_code"], "75204");
    assert_eq!(f["vendor_lead_id"], "HP-55120");
}

#[test]
fn html_table_sample_with_its_template() {
    let f = lead(&sample("html_table_only.eml"), &shipped());
    assert_eq!(f["first_name"], "Grace");
    assert_eq!(f["last_name"], "Kim");
    assert_eq!(f["email"], "grace.kim@example.com");
    assert_eq!(f["phone"], "+17185550126");
    assert_eq!(f["custom"]["property"], "88 Pine St #3B, Brooklyn, NY 11201");
    assert_eq!(f["custom"]["move_in"], "Nov 1");
    assert!(f.get("phone_2").is_none());
}

#[test]
fn html_table_sample_generically_ignores_agent_and_relay() {
    let out = parse(&sample("html_table_only.eml"), &no_templates()).unwrap();
    let all = values(&out.records[0]).join("\n");
    for theirs in ["555-0100", "marco@agency.example", "relay-8f3k2"] {
        assert!(!all.contains(theirs), "{theirs} leaked: {all}");
    }
    let f = lead(&sample("html_table_only.eml"), &no_templates());
    assert_eq!(f["email"], "grace.kim@example.com");
    assert_eq!(f["phone"], "+17185550126");
    assert_eq!(f["first_name"], "Grace");
    assert_eq!(f["custom"]["Move-in"], "Nov 1");
}

#[test]
fn links_fill_in_when_no_label_names_the_contact() {
    let raw = b"From: Site <noreply@site.example>\r\nReply-To: Ann Lee <relay-1@reply.site.example>\r\n\
                Subject: New\r\nContent-Type: text/html\r\n\r\n\
                <p>Ann wants a quote. <a href=\"mailto:ann%2Blead%40example.org\">E-mail her</a> or \
                <a href=\"tel:+1-512-555-0117\">call</a>.</p>\
                <p>Support: <a href=\"tel:18005550100\">1-800</a> <a href=\"mailto:help@site.example\">help</a></p>";
    let f = lead(raw, &no_templates());
    assert_eq!(f["email"], "ann+lead@example.org");
    assert_eq!(f["phone"], "+15125550117");
    assert_eq!(f["first_name"], "Ann");
    assert_eq!(f["last_name"], "Lee");
}

#[test]
fn adf_attachment_sample_with_and_without_template() {
    for cx in [shipped(), no_templates()] {
        let f = lead(&sample("adf_attachment.eml"), &cx);
        assert_eq!(f["first_name"], "Dana");
        assert_eq!(f["last_name"], "Whitfield");
        assert_eq!(f["email"], "dana.whitfield@example.com");
        assert_eq!(f["phone"], "+16145550134");
        assert_eq!(f["phone_2"], "+16145550188");
        assert_eq!(f["street"], "77 Elm Street");
        assert_eq!(f["city"], "Columbus");
        assert_eq!(f["state"], "OH");
        assert_eq!(f["postal_code"], "43215");
        assert_eq!(f["country"], "US");
        assert_eq!(f["product"], "2026 Subaru Outback Premium");
        assert_eq!(f["vendor_lead_id"], "EA-2026-114");
        assert_eq!(f["custom"]["vin"], "4S4BTAFC0R3100001");
        assert_eq!(f["custom"]["trade_in"], "2017 Honda Civic");
        assert_eq!(f["custom"]["timeframe"], "Within 2 weeks");
        assert_eq!(f["custom"]["requestdate"], "2026-10-05T14:22:09-05:00");
    }
}

#[test]
fn a_pinned_template_wins_and_an_unknown_one_is_an_error() {
    let mut cx = shipped();
    cx.email.template = Some("homepros".into());
    // The RentFinder mail read with the HomePros template: its required Lead ID is missing.
    let e = parse(&sample("html_table_only.eml"), &cx).unwrap_err();
    assert!(is_needs_template(&e.message), "{e}");
    cx.email.template = Some("nope".into());
    assert!(parse(&sample("labelled_text.eml"), &cx).unwrap_err().message.contains("\"nope\""));
    assert_eq!(template_name(&sample("labelled_text.eml"), &shipped().email).as_deref(), Some("homepros"));
    assert_eq!(template_name(&sample("labelled_text.eml"), &no_templates().email), None);
}

#[test]
fn unreadable_and_oversized_messages_are_refused() {
    let e = parse(b"\x00\x01garbage without headers", &no_templates()).unwrap_err();
    assert!(e.message.contains("not an e-mail message"), "{e}");
    let mut cx = no_templates();
    cx.email.limits.max_bytes = 100;
    let e = parse(&sample("labelled_text.eml"), &cx).unwrap_err();
    assert!(e.message.contains("over the limit"), "{e}");
    let mut deep =
        String::from("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
    for i in 0..40 {
        deep.push_str(&format!("--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n", i + 1));
    }
    let e = parse(deep.as_bytes(), &no_templates()).unwrap_err();
    assert!(e.message.contains("nested") || e.message.contains("parts"), "{e}");
    let empty = b"From: a@b.example\r\nSubject: hi\r\n\r\nHello, nothing here.\r\n";
    let e = parse(empty, &no_templates()).unwrap_err();
    assert!(is_needs_template(&e.message), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_mutated_samples(
        which in 0usize..3,
        at in 0usize..4000,
        insert in proptest::collection::vec(any::<u8>(), 0..16),
        cut in 0usize..4000,
    ) {
        let name = ["labelled_text.eml", "html_table_only.eml", "adf_attachment.eml"][which];
        let mut raw = sample(name);
        let at = at.min(raw.len());
        raw.splice(at..at, insert);
        raw.truncate(cut.max(1).min(raw.len()));
        let _result = parse(&raw, &shipped());
        let _result = parse(&raw, &no_templates());
    }

    #[test]
    fn html_conversion_never_panics(s in "[<>a-z/=\"'&#;: \\n]{0,200}") {
        let _html = html::convert(&s);
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/email").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixtures_by_shape() {
    let e = parse(&fixture("no-header-line.eml"), &no_templates()).unwrap_err();
    assert!(e.message.contains("not an e-mail message"), "{e}");
    let e = parse(&fixture("no-lead-fields.eml"), &no_templates()).unwrap_err();
    assert!(is_needs_template(&e.message), "{e}");

    let f = lead(&fixture("html-links-only.eml"), &no_templates());
    assert_eq!(f["email"], "ann+lead@example.org");
    assert_eq!(f["phone"], "+15125550117");
    assert_eq!(f["first_name"], "Ann");

    // Every part is read: the e-mail is in the text part, the phone only in the HTML one.
    let mail =
        mime::read(&fixture("multipart-alternative-phone-only-in-html.eml"), &MimeLimits::default()).unwrap();
    assert_eq!(mail.subject, "Nouvelle demande été");
    let f = lead(&fixture("multipart-alternative-phone-only-in-html.eml"), &no_templates());
    assert_eq!(f["first_name"], "Renée");
    assert_eq!(f["last_name"], "François");
    assert_eq!(f["email"], "renee@example.fr");
    assert_eq!(f["phone"], "+13125550199");

    // A forwarded vendor mail (message/rfc822 attachment) is read too.
    let f = lead(&fixture("forwarded-message-attachment.eml"), &no_templates());
    assert_eq!(f["vendor_lead_id"], "HP-1");
    assert_eq!(f["phone"], "+13035550111");
}

#[test]
fn the_look_alike_corpus_is_read_without_templates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/email/corpus");
    let report = corpus::run(&dir).unwrap();
    println!("{report}");
    assert!(report.messages.len() >= 30, "{} messages", report.messages.len());
    assert_eq!(report.wrong(), 0, "wrong e-mails/phones:\n{report}");
    assert!(report.share() >= corpus::TARGET_SHARE, "{report}");
}

fn corpus_file(stem: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/email/corpus").join(stem)
}

fn corpus_raw(stem: &str) -> Vec<u8> {
    std::fs::read(corpus_file(&format!("{stem}.eml"))).unwrap()
}

fn expected(stem: &str) -> std::collections::BTreeMap<String, String> {
    toml::from_str(&std::fs::read_to_string(corpus_file(&format!("{stem}.toml"))).unwrap()).unwrap()
}

fn flat_lead(record: &Record) -> std::collections::BTreeMap<String, String> {
    let lead = normalize(&crate::parse::without_review(record), &NormalizeOptions::default()).lead;
    let mut got = std::collections::BTreeMap::new();
    crate::parse::template::testing::flatten("", &serde_json::to_value(&lead).unwrap(), &mut got);
    got
}

fn field<'e>(e: &'e Extraction, name: &str) -> &'e Extracted {
    e.fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no {name} in {e}"))
}

#[test]
fn every_field_says_where_it_came_from_and_how_sure() {
    let e = &explain(&corpus_raw("01-label-next-line-text"), &no_templates()).unwrap()[0];
    let email = field(e, "email");
    assert_eq!((email.origin, email.confidence), (Origin::Label, Confidence::High), "{e}");
    assert_eq!(email.label.as_deref(), Some("Renter email"));
    assert_eq!(email.layout, Some(Layout::NextLine));
    assert_eq!(e.review, None);

    let e = &explain(&corpus_raw("05-html-name-mailto-link-base64"), &no_templates()).unwrap()[0];
    assert_eq!((field(e, "email").origin, field(e, "email").confidence), (Origin::Link, Confidence::Medium));
    assert_eq!(field(e, "full_name").value, "Lena Fischer");

    let e = &explain(&corpus_raw("10-html-table-cells-qp"), &no_templates()).unwrap()[0];
    assert_eq!(field(e, "phone").origin, Origin::TableCell);

    let e = &explain(&corpus_raw("16-no-labels-name-in-subject-html"), &no_templates()).unwrap()[0];
    assert_eq!(
        (field(e, "full_name").origin, field(e, "full_name").confidence),
        (Origin::Subject, Confidence::Low)
    );

    let e = &explain(&corpus_raw("18-form-tool-reply-to-is-lead"), &no_templates()).unwrap()[0];
    assert_eq!(field(e, "email").origin, Origin::Header);

    // A template's fields say so.
    let e = &explain(&sample("labelled_text.eml"), &shipped()).unwrap()[0];
    assert_eq!(e.template.as_deref(), Some("homepros"));
    assert!(e.fields.iter().all(|f| f.origin == Origin::Template && f.confidence == Confidence::High));
    // The printed form names origin and confidence.
    let printed =
        explain(&corpus_raw("15-no-labels-name-in-first-sentence"), &no_templates()).unwrap()[0].to_string();
    assert!(
        printed.contains("free text") && printed.contains("low") && printed.contains("needs review"),
        "{printed}"
    );
}

#[test]
fn a_lead_whose_contacts_are_all_guessed_is_marked_for_review() {
    let out = parse(&corpus_raw("15-no-labels-name-in-first-sentence"), &no_templates()).unwrap();
    let reason = crate::parse::review(&out.records[0]).expect("marked for review");
    assert!(reason.contains("low confidence"), "{reason}");
    // Its fields are still all there (the operator sees what was guessed).
    let got = flat_lead(&out.records[0]);
    assert_eq!(got.get("email").map(String::as_str), Some("rhea.k@mailbox.example"));
    assert!(!got.keys().any(|k| k.contains("review")), "{got:?}");
    // A labelled one is not.
    let out = parse(&corpus_raw("06-work-and-mobile-labels"), &no_templates()).unwrap();
    assert_eq!(crate::parse::review(&out.records[0]), None);
}

#[test]
fn a_short_template_wins_over_generic_extraction() {
    let toml = r#"description = "ClinicFinder patient leads"
[match]
from = ["*@clinicfinder.example"]
[fields]
full_name = { label = "PATIENT NAME", required = true }
email = { label = "PATIENT EMAIL" }
phone = { label = "PATIENT PHONE" }
comments = { label = "REASON" }
product = { value = "Clinic visit" }
"#;
    assert!(toml.lines().count() <= 15);
    let t = Template::from_toml("clinicfinder", toml, std::path::Path::new("clinicfinder.toml")).unwrap();
    let mut cx = no_templates();
    cx.email.templates = Arc::new(Templates::new(vec![t], Vec::new()));
    let raw = corpus_raw("33-caps-labels-asterisks");
    let with = parse(&raw, &cx).unwrap();
    let got = flat_lead(&with.records[0]);
    assert_eq!(got["comments"], "Back pain consultation");
    assert_eq!(got["product"], "Clinic visit");
    assert_eq!(got["email"], "rjones@mailbox.example");
    assert_eq!(crate::parse::review(&with.records[0]), None);
    // Generic extraction alone reads the reason as a custom field and knows no product.
    let without = flat_lead(&parse(&raw, &no_templates()).unwrap().records[0]);
    assert!(!without.contains_key("product") && !without.contains_key("comments"), "{without:?}");
    assert_eq!(explain(&raw, &cx).unwrap()[0].template.as_deref(), Some("clinicfinder"));
}

#[test]
fn a_suggested_template_reads_its_sample() {
    for stem in [
        "01-label-next-line-text",
        "06-work-and-mobile-labels",
        "10-html-table-cells-qp",
        "13-multipart-stub-text-html-table",
        "27-multipart-mixed-with-pdf",
        "29-html-label-paragraph-next",
        "36-html-spans-no-colons",
        "37-dot-leader-labels",
    ] {
        let raw = corpus_raw(stem);
        let text = suggest::suggest(&raw, None, &MimeLimits::default()).unwrap();
        let t = Template::from_toml("suggested", &text, std::path::Path::new("suggested.toml"))
            .unwrap_or_else(|p| panic!("{stem}: {p:?}\n{text}"));
        let mail = mime::read(&raw, &MimeLimits::default()).unwrap();
        assert!(t.matches(&mail), "{stem}: the suggestion does not match its sample\n{text}");
        let out = t.extract(&mail, &no_templates()).unwrap_or_else(|e| panic!("{stem}: {e}\n{text}"));
        let got = flat_lead(&out.records[0]);
        for (k, v) in expected(stem) {
            assert_eq!(got.get(&k), Some(&v), "{stem}: {k}\n{text}\n{got:?}");
        }
    }
}

/// Pieces vendors' HTML is made of, with broken and hostile ones among them.
fn html_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<table>".to_owned()),
        Just("</table>".to_owned()),
        Just("<tr>".to_owned()),
        Just("<td>".to_owned()),
        Just("</td>".to_owned()),
        Just("<th>".to_owned()),
        Just("<dl><dt>".to_owned()),
        Just("</dt><dd>".to_owned()),
        Just("<b>".to_owned()),
        Just("</b><br>".to_owned()),
        Just("<p>".to_owned()),
        Just("<div>".to_owned()),
        Just("<a href=\"mailto:".to_owned()),
        Just("<a href='tel:".to_owned()),
        Just("\">".to_owned()),
        Just("</a>".to_owned()),
        Just("<!--".to_owned()),
        Just("<script>".to_owned()),
        Just("&nbsp;&nbsp;".to_owned()),
        Just("&#x1F600;".to_owned()),
        Just("Email".to_owned()),
        Just("Phone:".to_owned()),
        Just("Renter name".to_owned()),
        Just("City, State, Zip Code:".to_owned()),
        Just("ana.ruiz@mailbox.example".to_owned()),
        Just("(512) 555-0142".to_owned()),
        Just("Rhea has sent you a message".to_owned()),
        Just("---------- Forwarded message ---------".to_owned()),
        Just("> ".to_owned()),
        Just("\n".to_owned()),
        "[a-zA-Z0-9@.:<>/=\"'&#; \\n-]{0,24}",
    ]
}

fn encode(body: &str, cte: usize) -> (String, &'static str) {
    use base64::Engine as _;
    match cte {
        0 => (body.to_owned(), "8bit"),
        1 => {
            let mut qp = String::new();
            for b in body.bytes() {
                if b == b'\n' || (b.is_ascii_graphic() && b != b'=') || b == b' ' {
                    qp.push(b as char);
                } else {
                    qp.push_str(&format!("={b:02X}"));
                }
            }
            (qp, "quoted-printable")
        }
        _ => (base64::engine::general_purpose::STANDARD.encode(body.as_bytes()), "base64"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// HTML-only and multipart messages (stub text, alternative, mixed, nested message),
    /// any transfer encoding and charset: parsing, explaining and suggesting never panic,
    /// and what comes out is the same on a second run (deterministic).
    #[test]
    fn html_and_multipart_shapes_never_panic(
        pieces in proptest::collection::vec(html_piece(), 0..40),
        text in proptest::collection::vec(html_piece(), 0..10),
        shape in 0usize..4,
        cte in 0usize..3,
        charset in 0usize..3,
        crlf in any::<bool>(),
    ) {
        let html: String = pieces.concat();
        let text: String = text.concat();
        let charset = ["utf-8", "iso-8859-1", "windows-1252"][charset];
        let (html_body, html_cte) = encode(&html, cte);
        let (text_body, text_cte) = encode(&text, (cte + 1) % 3);
        let html_part = format!("Content-Type: text/html; charset={charset}\nContent-Transfer-Encoding: {html_cte}\n\n{html_body}\n");
        let text_part = format!("Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: {text_cte}\n\n{text_body}\n");
        let head = "From: Vendor <noreply@vendor.example>\nReply-To: relay-8f3k2@reply.vendor.example\nSubject: New inquiry from Ana Ruiz\nMIME-Version: 1.0\n";
        let mut raw = match shape {
            0 => format!("{head}{html_part}"),
            1 => format!("{head}Content-Type: multipart/alternative; boundary=\"b\"\n\n--b\n{text_part}--b\n{html_part}--b--\n"),
            2 => format!("{head}Content-Type: multipart/mixed; boundary=\"m\"\n\n--m\n{text_part}--m\nContent-Type: message/rfc822\n\nFrom: x@y.example\n{html_part}--m--\n"),
            _ => format!("{head}Content-Type: multipart/alternative; boundary=\"b\"\n\n--b\n{text_part}--b\n{html_part}"),
        };
        if crlf {
            raw = raw.replace('\n', "\r\n");
        }
        let first = parse(raw.as_bytes(), &no_templates());
        let again = parse(raw.as_bytes(), &no_templates());
        prop_assert_eq!(first, again);
        let _explained = explain(raw.as_bytes(), &no_templates());
        let _suggested = suggest::suggest(raw.as_bytes(), None, &MimeLimits::default());
        let _shipped = parse(raw.as_bytes(), &shipped());
    }

    /// Generic extraction on arbitrary text lines never panics.
    #[test]
    fn generic_extraction_never_panics_on_any_text(body in "\\PC{0,400}") {
        let raw = format!("From: a@b.example\r\nSubject: {}\r\n\r\n{body}", body.lines().next().unwrap_or(""));
        let _result = parse(raw.as_bytes(), &no_templates());
    }
}

#[test]
fn extraction_is_bounded_on_huge_lines_and_many_lines() {
    let mut body = String::from("From: a@b.example\r\nSubject: x\r\n\r\n");
    body.push_str(&"Email: ".repeat(50_000));
    body.push_str("\r\n");
    for i in 0..20_000 {
        body.push_str(&format!("Label {i}:\r\nvalue (512) 555-{:04}\r\n", i % 10_000));
    }
    // Finishes (the limits cut the work) and takes no wrong field from the noise.
    let out = parse(body.as_bytes(), &no_templates());
    if let Ok(out) = out {
        let lead = flat_lead(&out.records[0]);
        assert!(!lead.contains_key("email"), "{lead:?}");
    }
}
