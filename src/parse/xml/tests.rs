//! Every input runs twice, with LF and with CRLF line ends, and must give the same
//! records or the same error (message, line and column).

// Tests may unwrap; the crate has no clippy.toml `allow-unwrap-in-tests` yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::Value;

use super::parse;
use crate::parse::{ParseContext, ParseError, ParseOutput, Record};

/// `tests/fixtures/samples/http/xml_lead.xml`, verbatim.
const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<lead>
  <contact>
    <first_name>Priya</first_name>
    <last_name>Raman</last_name>
    <email>priya.raman@example.net</email>
    <phone type="cell">+1 206 555 0173</phone>
  </contact>
  <address>
    <city>Seattle</city>
    <state>WA</state>
    <zip>98101</zip>
  </address>
  <interest>home insurance</interest>
  <source_id>XML-5521</source_id>
</lead>
"#;

const BATCH: &str = r#"<?xml version="1.0"?>
<leads count="3">
  <lead id="1"><name>Ann</name><email>ann@example.com</email></lead>
  <lead id="2"><name>Bob</name><email>bob@example.com</email></lead>
  <lead id="3">
    <name>Cy</name>
    <email>cy@example.com</email>
  </lead>
</leads>
"#;

fn crlf(input: &str) -> String {
    input.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn variants(input: &str) -> [(&'static str, Vec<u8>); 2] {
    [("LF", input.replace("\r\n", "\n").into_bytes()), ("CRLF", crlf(input).into_bytes())]
}

fn cx() -> ParseContext {
    ParseContext::default()
}

fn with_paths(pairs: &[(&str, &str)]) -> ParseContext {
    let xml_paths: BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ParseContext { xml_paths, ..ParseContext::default() }
}

fn with_record(name: &str) -> ParseContext {
    ParseContext { xml_record: Some(name.to_owned()), ..ParseContext::default() }
}

/// Parses the LF and CRLF variants, asserts they agree and succeed.
fn ok_with(input: &str, cx: &ParseContext) -> ParseOutput {
    let [(_, lf), (_, crlf)] = variants(input);
    let a = parse(&lf, cx).unwrap_or_else(|e| panic!("LF: {e}\n{input}"));
    let b = parse(&crlf, cx).unwrap_or_else(|e| panic!("CRLF: {e}\n{input}"));
    assert_eq!(a, b, "LF and CRLF differ for\n{input}");
    a
}

fn ok(input: &str) -> ParseOutput {
    ok_with(input, &cx())
}

/// Parses the LF and CRLF variants, asserts they fail the same way.
fn err_with(input: &str, cx: &ParseContext) -> ParseError {
    let [(_, lf), (_, crlf)] = variants(input);
    let a = parse(&lf, cx).expect_err("LF variant parsed");
    let b = parse(&crlf, cx).expect_err("CRLF variant parsed");
    assert_eq!(a, b, "LF and CRLF errors differ for\n{input}");
    a
}

fn err(input: &str) -> ParseError {
    err_with(input, &cx())
}

#[track_caller]
fn assert_err(e: &ParseError, needle: &str, line: u64, column: u64) {
    assert!(e.message.contains(needle), "{e:?} does not mention {needle:?}");
    assert_eq!((e.line, e.column), (Some(line), Some(column)), "{e}");
}

fn get<'r>(record: &'r Record, name: &str) -> Option<&'r str> {
    record.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_str())
}

fn pairs(record: &Record) -> Vec<(&str, &str)> {
    record.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("<not a string>"))).collect()
}

fn single(out: &ParseOutput) -> &Record {
    assert!(!out.batch);
    assert_eq!(out.records.len(), 1);
    &out.records[0]
}

// ---- the sample -------------------------------------------------------------------

#[test]
fn sample_gives_one_record_with_leaf_names_and_the_phone_type() {
    let out = ok(SAMPLE);
    assert_eq!(
        pairs(single(&out)),
        [
            ("first_name", "Priya"),
            ("last_name", "Raman"),
            ("email", "priya.raman@example.net"),
            ("phone", "+1 206 555 0173"),
            ("phone@type", "cell"),
            ("city", "Seattle"),
            ("state", "WA"),
            ("zip", "98101"),
            ("interest", "home insurance"),
            ("source_id", "XML-5521"),
        ]
    );
}

#[test]
fn sample_with_a_source_mapping_renames_the_mapped_fields() {
    let cx = with_paths(&[("lead/source_id", "vendor_lead_id"), ("interest", "product")]);
    let out = ok_with(SAMPLE, &cx);
    let record = single(&out);
    assert_eq!(get(record, "vendor_lead_id"), Some("XML-5521"));
    assert_eq!(get(record, "product"), Some("home insurance"));
    assert_eq!(get(record, "source_id"), None);
    assert_eq!(get(record, "interest"), None);
    assert_eq!(get(record, "first_name"), Some("Priya"));
}

#[test]
fn sample_with_a_bom_before_the_declaration_is_accepted() {
    let mut raw = b"\xEF\xBB\xBF".to_vec();
    raw.extend_from_slice(SAMPLE.as_bytes());
    let out = parse(&raw, &cx()).unwrap();
    assert_eq!(get(single(&out), "first_name"), Some("Priya"));
}

// ---- mapping ------------------------------------------------------------------------

#[test]
fn mapping_paths_may_start_at_the_record_its_children_or_the_root() {
    let cx = with_paths(&[
        ("contact/first_name", "first"),
        ("lead/contact/last_name", "last"),
        ("/contact/phone@type", "phone_kind"),
        ("address/zip", "postal_code"),
        ("first_name", "never: bare names are not paths below the record"),
    ]);
    let out = ok_with(SAMPLE, &cx);
    let record = single(&out);
    assert_eq!(get(record, "first"), Some("Priya"));
    assert_eq!(get(record, "last"), Some("Raman"));
    assert_eq!(get(record, "phone_kind"), Some("cell"));
    assert_eq!(get(record, "postal_code"), Some("98101"));
    assert_eq!(get(record, "phone"), Some("+1 206 555 0173"));
}

#[test]
fn mapping_in_a_batch_is_relative_to_each_record() {
    let cx = with_paths(&[("name", "full_name"), ("leads/lead@id", "vendor_lead_id")]);
    let out = ok_with(BATCH, &cx);
    assert!(out.batch);
    for (record, (name, id)) in out.records.iter().zip([("Ann", "1"), ("Bob", "2"), ("Cy", "3")]) {
        assert_eq!(get(record, "full_name"), Some(name));
        assert_eq!(get(record, "vendor_lead_id"), Some(id));
    }
}

// ---- records ------------------------------------------------------------------------

#[test]
fn repeated_children_of_the_root_are_a_batch() {
    let out = ok(BATCH);
    assert!(out.batch);
    assert_eq!(out.records.len(), 3);
    assert_eq!(pairs(&out.records[2]), [("lead@id", "3"), ("name", "Cy"), ("email", "cy@example.com")]);
    // The envelope (`count`) belongs to no record.
    assert!(out.records.iter().all(|r| get(r, "leads@count").is_none()));
}

#[test]
fn repeated_leaf_children_are_not_records() {
    let out = ok("<lead><phone>1</phone><phone>2</phone><name>N</name></lead>");
    assert_eq!(pairs(single(&out)), [("phone", "1"), ("phone", "2"), ("name", "N")]);
}

#[test]
fn a_single_wrapped_lead_is_not_a_batch() {
    let out = ok("<leads>\n  <lead><name>Ann</name></lead>\n</leads>\n");
    assert_eq!(pairs(single(&out)), [("name", "Ann")]);
}

#[test]
fn the_most_repeated_name_is_the_record_and_empty_ones_count() {
    let input = "<export>\n<meta><a>1</a></meta>\n<lead><n>A</n></lead>\n<lead><n>B</n></lead>\n\
                 <lead/>\n<lead><n>C</n></lead>\n<meta><a>2</a></meta>\n</export>";
    let out = ok(input);
    assert!(out.batch);
    assert_eq!(out.records.len(), 4);
    assert_eq!(pairs(&out.records[2]), [("lead", "")]);
    assert_eq!(pairs(&out.records[3]), [("n", "C")]);
}

#[test]
fn an_explicit_record_element_is_found_at_any_depth() {
    let input = "<export><batch><item><prospect><name>A</name></prospect></item>\n\
                 <item><prospect><name>B</name></prospect></item></batch></export>";
    let out = ok_with(input, &with_record("prospect"));
    assert!(out.batch);
    assert_eq!(out.records.iter().map(pairs).collect::<Vec<_>>(), [[("name", "A")], [("name", "B")]]);
}

#[test]
fn an_explicit_record_is_a_batch_even_alone_and_paths_are_relative_to_it() {
    let cx = ParseContext {
        xml_paths: [("contact/first_name".to_owned(), "first".to_owned())].into(),
        ..with_record("ns:lead")
    };
    let out = ok_with(SAMPLE, &cx);
    assert!(out.batch);
    assert_eq!(out.records.len(), 1);
    assert_eq!(get(&out.records[0], "first"), Some("Priya"));
}

#[test]
fn an_explicit_record_that_is_absent_is_an_error() {
    let e = err_with(SAMPLE, &with_record("prospect"));
    assert_err(&e, "no <prospect> element", 2, 1);
}

#[test]
fn a_record_nested_in_a_record_belongs_to_the_outer_one() {
    let out = ok_with("<l><l><a>1</a></l><b>2</b></l>", &with_record("l"));
    assert_eq!(out.records.iter().map(pairs).collect::<Vec<_>>(), [[("a", "1"), ("b", "2")]]);
}

// ---- text, attributes, names --------------------------------------------------------

#[test]
fn cdata_entities_and_character_references_are_decoded() {
    let input = "<lead>\n  <comments><![CDATA[Rate < 6% & <b>soon</b>]]></comments>\n\
                 <company>Smith &amp; Sons &lt;Ltd&gt; &quot;q&quot; &apos;a&apos;</company>\n\
                 <first_name>Jos&#233; &#xE9;&#XE9;</first_name>\n\
                 <mixed> a <![CDATA[b]]> c&#32;</mixed>\n</lead>";
    let out = ok(input);
    assert_eq!(
        pairs(single(&out)),
        [
            ("comments", "Rate < 6% & <b>soon</b>"),
            ("company", "Smith & Sons <Ltd> \"q\" 'a'"),
            ("first_name", "José éé"),
            ("mixed", "a b c"),
        ]
    );
}

#[test]
fn a_lone_ampersand_is_text() {
    let out = ok("<lead><company>AT&T</company><note>Smith & Sons; Ltd</note></lead>");
    assert_eq!(pairs(single(&out)), [("company", "AT&T"), ("note", "Smith & Sons; Ltd")]);
}

#[test]
fn empty_leaves_keep_their_pair_and_blank_text_is_ignored() {
    let input = "<lead>\n  <middle_name/>\n  <suffix></suffix>\n  <title>   \n  </title>\n</lead>";
    let out = ok(input);
    assert_eq!(pairs(single(&out)), [("middle_name", ""), ("suffix", ""), ("title", "")]);
}

#[test]
fn multi_line_text_keeps_lf_line_ends_in_both_variants() {
    let out = ok("<lead><comments>\n  line one\n  line two\n</comments></lead>");
    assert_eq!(get(single(&out), "comments"), Some("line one\n  line two"));
}

#[test]
fn attributes_on_leaves_and_containers_are_data() {
    let input = "<lead source=\"web\" xmlns=\"urn:x\" xmlns:v=\"urn:v\">\n\
                 <contact v:kind='primary'><phone type=\"cell\" ext=\" 12 \">555</phone>\
                 <fax type=\"work\"/></contact>\n</lead>";
    let out = ok(input);
    assert_eq!(
        pairs(single(&out)),
        [
            ("lead@source", "web"),
            ("contact@kind", "primary"),
            ("phone", "555"),
            ("phone@type", "cell"),
            ("phone@ext", "12"),
            ("fax", ""),
            ("fax@type", "work"),
        ]
    );
}

#[test]
fn attribute_values_decode_references() {
    let out = ok("<lead><co name=\"A &amp; B &#x263A; AT&T\"/></lead>");
    assert_eq!(get(single(&out), "co@name"), Some("A & B ☺ AT&T"));
}

#[test]
fn namespace_prefixes_are_stripped() {
    let input = "<ns:leads xmlns:ns=\"urn:l\"><ns:lead><ns:name>A</ns:name></ns:lead>\
                 <ns:lead><ns:name>B</ns:name></ns:lead></ns:leads>";
    let out = ok_with(input, &with_paths(&[("lead/name", "full_name")]));
    assert!(out.batch);
    assert_eq!(
        out.records.iter().map(pairs).collect::<Vec<_>>(),
        [[("full_name", "A")], [("full_name", "B")]]
    );
}

#[test]
fn mixed_content_keeps_the_containers_own_text() {
    let out = ok("<lead>Call after 5 <name>Ann</name> please</lead>");
    assert_eq!(pairs(single(&out)), [("name", "Ann"), ("lead", "Call after 5  please")]);
}

#[test]
fn comments_and_processing_instructions_are_ignored() {
    let out = ok(
        "<?xml version='1.0'?>\n<!-- c --><?pi x?>\n<lead><!-- c --><a>1<!-- c -->2</a></lead>\n<!-- end -->\n",
    );
    assert_eq!(pairs(single(&out)), [("a", "12")]);
}

#[test]
fn a_root_leaf_is_a_record_of_one_field() {
    assert_eq!(pairs(single(&ok("<email>a@example.com</email>"))), [("email", "a@example.com")]);
}

// ---- encodings ----------------------------------------------------------------------

#[test]
fn latin1_declared_bodies_are_decoded() {
    let raw =
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<lead><n>Ib\xE1\xF1ez \x93Q\x94</n></lead>";
    let out = parse(raw, &cx()).unwrap();
    assert_eq!(get(single(&out), "n"), Some("Ibáñez “Q”"));
}

#[test]
fn typographic_quotes_in_the_declaration_are_tolerated() {
    let out = ok("<?xml version=“1.0” encoding=“UTF-8”?>\n<lead><n>Zoë</n></lead>");
    assert_eq!(get(single(&out), "n"), Some("Zoë"));
}

#[test]
fn unsupported_encodings_are_refused_by_name() {
    let raw = b"<?xml version=\"1.0\" encoding=\"EUC-JP\"?>\n<lead><n>\xA4\xA2</n></lead>";
    let e = parse(raw, &cx()).unwrap_err();
    assert_err(&e, "\"EUC-JP\"", 1, 1);
}

#[test]
fn invalid_utf8_is_refused_at_the_byte() {
    for (_, mut raw) in variants("<lead>\n  <n>caf") {
        raw.extend_from_slice(b"\xC3(</n>\n</lead>");
        let e = parse(&raw, &cx()).unwrap_err();
        assert_err(&e, "not valid UTF-8 (byte 0xC3)", 2, 9);
    }
}

// ---- safety -------------------------------------------------------------------------

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>
"#;

#[test]
fn billion_laughs_is_refused_at_the_doctype() {
    assert_err(&err(BILLION_LAUGHS), "DOCTYPE/DTD is not allowed (entity expansion is disabled)", 2, 1);
}

#[test]
fn external_entities_are_refused() {
    let xxe = "<?xml version=\"1.0\"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n\
               <lead><name>&xxe;</name></lead>";
    assert_err(&err(xxe), "DOCTYPE/DTD is not allowed", 2, 1);
    let public = "<!DOCTYPE lead PUBLIC \"-//X//EN\" \"http://example.com/lead.dtd\"><lead/>";
    assert_err(&err(public), "DOCTYPE/DTD is not allowed", 1, 1);
    assert_err(&err("<!doctype lead>\n<lead/>"), "DOCTYPE/DTD is not allowed", 1, 1);
    assert_err(&err("<lead/>\n<!DOCTYPE>"), "DOCTYPE/DTD is not allowed", 2, 1);
    let unclosed = "<?xml version=\"1.0\"?>\n<!DOCTYPE foo [ <!ENTITY x \"y\">";
    assert_err(&err(unclosed), "DOCTYPE/DTD is not allowed", 2, 1);
}

#[test]
fn undefined_entities_are_refused_by_name() {
    let e = err("<lead>\n  <name>&xxe;</name>\n</lead>");
    assert_err(&e, "undefined entity &xxe;", 2, 9);
    let e = err("<lead>\n  <name a=\"&nbsp;\"/>\n</lead>");
    assert_err(&e, "attribute a of <name>: undefined entity &nbsp;", 2, 3);
    let e = err("<lead>&#0;</lead>");
    assert_err(&e, "&#0; is not an allowed XML character", 1, 7);
}

#[test]
fn deep_nesting_is_refused_at_the_limit() {
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let e = err(&deep);
    assert_err(&e, "nested more than 32 levels deep", 1, 32 * 3 + 1);
    let at_limit = format!("{}x{}", "<a>".repeat(32), "</a>".repeat(32));
    assert_eq!(pairs(single(&ok(&at_limit))), [("a", "x")]);
}

#[test]
fn too_many_attributes_are_refused() {
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let input = format!("<lead>\n  <x{attrs}/>\n</lead>");
    assert_err(&err(&input), "element <x> has more than 64 attributes", 2, 3);
    let attrs: String = (0..64).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let out = ok(&format!("<lead><x{attrs}/></lead>"));
    assert_eq!(single(&out).len(), 65);
}

#[test]
fn too_many_records_are_refused() {
    let cx = ParseContext { max_records: 2, ..ParseContext::default() };
    let e = err_with(BATCH, &cx);
    assert_err(&e, "more than 2 records (<lead> elements)", 5, 3);
    let cx = ParseContext { max_records: 2, ..with_record("lead") };
    assert_err(&err_with(BATCH, &cx), "more than 2 records", 5, 3);
    let three_with_an_empty = "<r>\n<l><a/></l>\n<l><a/></l>\n<l/>\n</r>";
    let cx = ParseContext { max_records: 2, ..ParseContext::default() };
    assert_err(&err_with(three_with_an_empty, &cx), "more than 2 records", 4, 1);
    assert_eq!(ok_with(BATCH, &ParseContext { max_records: 3, ..cx }).records.len(), 3);
}

#[test]
fn mismatched_unmatched_and_unclosed_tags_are_refused() {
    let e = err(&SAMPLE.replace("</address>", "</contact>"));
    assert_err(&e, "closing tag </contact> does not match <address>", 13, 3);
    let e = err("<lead>\n</lead>\n</extra>");
    assert_err(&e, "closing tag </extra> has no matching opening tag", 3, 1);
    let e = err("<lead>\n  <address>\n    <city>Seattle</city>\n");
    assert_err(&e, "the document ends before <address> (opened at line 2, column 3) is closed", 4, 1);
    let e = err("<lead>\n  <name>Ann</name");
    assert_err(&e, "tag not closed", 2, 12);
    let e = err("<lead><a b=\"1></lead>");
    assert_err(&e, "malformed XML", 1, 7);
}

#[test]
fn broken_attributes_are_refused_where_they_break() {
    assert_err(&err("<lead>\n  <p type=cell/>\n</lead>"), "without quotes on <p>", 2, 11);
    assert_err(&err("<lead>\n  <p a=\"1\" a=\"2\"/>\n</lead>"), "attribute a appears twice on <p>", 2, 12);
    assert_err(&err("<lead>\n  <p checked/>\n</lead>"), "without `=`", 2, 13);
}

#[test]
fn invalid_names_are_refused() {
    assert_err(&err("<lead>\n  <a/b>1</a/b>\n</lead>"), "invalid element name <a/b>", 2, 3);
    assert_err(&err("<lead><1st>x</1st></lead>"), "invalid element name <1st>", 1, 7);
    assert_err(&err("<lead><p:>x</p:></lead>"), "invalid element name <p:>", 1, 7);
}

#[test]
fn documents_without_elements_are_refused() {
    assert_err(&err(""), "contains no XML element", 1, 1);
    assert_err(&err("   \n  "), "contains no XML element", 2, 3);
    assert_err(&err("<?xml version=\"1.0\"?>\n"), "contains no XML element", 2, 1);
    assert_err(&err("<!-- only a comment -->"), "contains no XML element", 1, 24);
    let e = parse(b"\xEF\xBB\xBF", &cx()).unwrap_err();
    assert_err(&e, "contains no XML element", 1, 1);
}

#[test]
fn text_outside_the_root_is_refused() {
    assert_err(&err("hello <lead/>"), "text before the root element", 1, 1);
    assert_err(&err("<lead/>\n  trailing"), "text after the root element", 2, 3);
    assert_err(&err("<lead/>\n&amp;"), "text after the root element", 2, 1);
    assert_err(&err("<lead/>\n<![CDATA[x]]>"), "CDATA section outside the root", 2, 1);
    assert_err(&err("<lead/>\n<lead/>"), "a second root element <lead>", 2, 1);
}

// ---- never panic --------------------------------------------------------------------

/// Parses anything; the only requirement is to come back (with records or an error).
fn survives(raw: &[u8], cx: &ParseContext) {
    match parse(raw, cx) {
        Ok(out) => assert!(out.records.len() <= cx.max_records),
        Err(e) => assert!(e.line.is_some() && e.column.is_some(), "no position: {e}"),
    }
}

#[test]
fn truncations_and_mutations_of_the_sample_never_panic() {
    let contexts = [
        cx(),
        with_record("contact"),
        with_paths(&[("contact/phone@type", "kind"), ("lead", "x")]),
        ParseContext { max_depth: 2, max_attributes: 0, max_records: 1, ..cx() },
    ];
    let replacements: &[&[u8]] = &[
        b"",
        b"<",
        b">",
        b"&",
        b"/",
        b"\"",
        b"'",
        b"=",
        b"!",
        b"?",
        b"]",
        b":",
        b"@",
        b"\0",
        b"\xFF",
        b"\xC3",
        b"&#",
        b"<!DOCTYPE x>",
        b"<![CDATA[",
        b"]]>",
        b"<!--",
        b"&lt;",
        b"\r",
        b"<a>",
        b"</a>",
        b"<a/>",
    ];
    for (_, sample) in variants(&format!("{SAMPLE}{BATCH}")) {
        for cut in 0..=sample.len() {
            for cx in &contexts {
                survives(&sample[..cut], cx);
                survives(&sample[cut..], cx);
            }
        }
        for at in 0..sample.len() {
            for with in replacements {
                let mut mutated = sample[..at].to_vec();
                mutated.extend_from_slice(with);
                mutated.extend_from_slice(&sample[at + 1..]);
                survives(&mutated, &contexts[at % contexts.len()]);
                let mut inserted = sample[..at].to_vec();
                inserted.extend_from_slice(with);
                inserted.extend_from_slice(&sample[at..]);
                survives(&inserted, &contexts[(at + 1) % contexts.len()]);
            }
        }
    }
}

#[test]
fn pseudo_random_byte_soup_never_panics() {
    let alphabet: &[u8] = b"<>/=\"'&;#x!?-[]: \n\r\tabAB01\xC3\xA9\xFF\0";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let soup: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        survives(&soup, &cx());
    }
}

#[test]
fn pathological_inputs_are_refused_without_panicking() {
    let cx = cx();
    let deep_open = "<a>".repeat(100_000);
    let cases: Vec<Vec<u8>> = vec![
        deep_open.clone().into_bytes(),
        format!("{deep_open}{}", "</a>".repeat(100_000)).into_bytes(),
        BILLION_LAUGHS.as_bytes().to_vec(),
        format!("<a{}>", (0..100_000).map(|i| format!(" b{i}='{i}'")).collect::<String>()).into_bytes(),
        b"\xFF\xFE\x00".to_vec(),
        b"\xEF\xBB".to_vec(),
        b"<".to_vec(),
        b"<a".to_vec(),
        b"</a>".to_vec(),
        b"<a></b>".to_vec(),
        b"&".to_vec(),
        b"&amp;".to_vec(),
        b"<a>&#xFFFFFFFFFF;</a>".to_vec(),
        b"<a>&#xD800;</a>".to_vec(),
        b"<a>&;</a>".to_vec(),
        b"<a b='&'/>".to_vec(),
        b"<!>".to_vec(),
        b"<!-->".to_vec(),
        b"<![CDATA[".to_vec(),
        b"<?xml".to_vec(),
        b"<?xml?>".to_vec(),
        b"<??>".to_vec(),
        b"<a/><!DOCTYPE a>".to_vec(),
        "<a>\u{FEFF}</a>".as_bytes().to_vec(),
        vec![b'<'; 100_000],
        vec![b'&'; 100_000],
        vec![0; 1000],
    ];
    for case in &cases {
        survives(case, &cx);
    }
    assert!(parse(&deep_open.into_bytes(), &cx).unwrap_err().message.contains("32 levels"));
}

#[test]
fn values_are_json_strings() {
    let out = ok("<lead><age>42</age></lead>");
    assert_eq!(single(&out)[0].1, Value::String("42".to_owned()));
}
