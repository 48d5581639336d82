use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

fn rules(reject_if: Option<&str>, accept_if: Option<&str>, reason: Option<&str>) -> ResponseRules {
    ResponseRules::compile(reject_if, accept_if, reason).unwrap()
}

fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    h
}

fn kind(status: u16, h: &HeaderMap, body: &str, r: &ResponseRules) -> Option<ErrorKind> {
    classify(status, h, body, r, NOW).err().map(|e| e.kind)
}

fn matches(rule: &str, body: &str) -> bool {
    Rule::compile("reject_if", rule).unwrap().matches(&Answer::new(body))
}

#[test]
fn statuses_classify_per_the_table() {
    let none = ResponseRules::default();
    let h = HeaderMap::new();
    assert_eq!(
        classify(200, &h, "ok", &none, NOW),
        Ok(Accepted { status: Some(200), response: "ok".into() })
    );
    assert!(classify(201, &h, "", &none, NOW).is_ok());
    assert!(classify(204, &h, "", &none, NOW).is_ok());
    assert_eq!(kind(301, &h, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(408, &h, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(500, &h, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(502, &h, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(503, &h, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(429, &h, "", &none), Some(ErrorKind::RateLimited { retry_after: None }));
    assert_eq!(kind(410, &h, "", &none), Some(ErrorKind::Gone));
    assert_eq!(kind(400, &h, "", &none), Some(ErrorKind::Permanent));
    assert_eq!(kind(404, &h, "", &none), Some(ErrorKind::Permanent));
    assert_eq!(kind(422, &h, "", &none), Some(ErrorKind::Permanent));
    assert_eq!(kind(102, &h, "", &none), Some(ErrorKind::Transient));

    let e = classify(404, &h, "no such hook", &none, NOW).unwrap_err();
    assert_eq!(e.message, "HTTP 404 Not Found");
    assert_eq!(e.status, Some(404));
    assert_eq!(e.response, "no such hook");
}

#[test]
fn redirects_are_transient_and_name_the_location() {
    let h = headers(&[(LOCATION, "https://elsewhere.example/hook")]);
    let e = classify(302, &h, "", &ResponseRules::default(), NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.contains("redirects are not followed"), "{}", e.message);
    assert!(e.message.contains("https://elsewhere.example/hook"), "{}", e.message);
}

#[test]
fn retry_after_is_read_as_seconds_or_http_date() {
    let none = ResponseRules::default();
    let secs = headers(&[(RETRY_AFTER, "7")]);
    let seven = ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(7)) };
    assert_eq!(kind(429, &secs, "", &none), Some(seven));
    assert_eq!(kind(503, &secs, "", &none), Some(seven));

    for date in
        ["Sun, 01 Mar 2026 12:01:30 GMT", "Sunday, 01-Mar-26 12:01:30 GMT", "Sun Mar  1 12:01:30 2026"]
    {
        let h = headers(&[(RETRY_AFTER, date)]);
        assert_eq!(retry_after(&h, NOW), Some(Duration::from_secs(90)), "{date}");
    }
    let past = headers(&[(RETRY_AFTER, "Sat, 28 Feb 2026 12:00:00 GMT")]);
    assert_eq!(retry_after(&past, NOW), Some(Duration::ZERO));
    for bad in ["soon", "-5", "1.5", "", "Sun, 31 Feb 2026 12:00:00 GMT", "Sun, 01 Mar 2026 25:00:00 GMT"] {
        let h = headers(&[(RETRY_AFTER, bad)]);
        assert_eq!(retry_after(&h, NOW), None, "{bad}");
    }
    let bad = headers(&[(RETRY_AFTER, "soon")]);
    assert_eq!(kind(503, &bad, "", &none), Some(ErrorKind::Transient));
    assert_eq!(kind(429, &bad, "", &none), Some(ErrorKind::RateLimited { retry_after: None }));
}

#[test]
fn json_rules_compare_and_test_presence() {
    let body = r#"{"status":"rejected","message":"dup","accepted":false,"result":{"code":0},
                   "price":1.0,"errors":[{"message":"dup"}],"note":null}"#;
    assert!(matches(r#"$.status == "rejected""#, body));
    assert!(matches("$.status == 'rejected'", body));
    assert!(!matches(r#"$.status != "rejected""#, body));
    assert!(matches(r#"$.status != "accepted""#, body));
    assert!(matches("$.accepted == false", body));
    assert!(!matches("$.result.code != 0", body));
    assert!(matches("$.result.code == 0.0", body), "numbers compare by value");
    assert!(matches("$.price == 1", body));
    assert!(matches(r#"$.errors[*].message == "dup""#, body));
    assert!(matches("$.errors", body));
    assert!(!matches("$.accepted", body), "false is absent");
    assert!(!matches("$.note", body), "null is absent");
    assert!(!matches("$.missing", body));
    assert!(matches("$.missing != 1", body), "!= is the negation of ==");
    assert!(matches(r#"$.errors[?@.message == "dup"]"#, body), "filters keep their operators");
    assert!(matches(r#"  $.status=="rejected"  "#, body));
    // Not JSON: no JSONPath rule matches.
    assert!(!matches("$.status", "<status>rejected</status>"));
    assert!(!matches(r#"$.status == "rejected""#, "status: rejected"));
}

#[test]
fn xml_rules_compare_text_and_test_presence() {
    let body = "<response><status> rejected </status><error code='42'>Duplicate lead</error></response>";
    assert!(matches("/response/status = 'rejected'", body));
    assert!(matches("//status = \"rejected\"", body));
    assert!(matches("//status != 'ok'", body));
    assert!(!matches("//status != 'rejected'", body));
    assert!(matches("//error", body));
    assert!(matches("//error/@code = 42", body));
    assert!(matches("//error/@code = '42'", body));
    assert!(!matches("//warning", body));
    assert!(!matches("/status = 'rejected'", body));
    assert!(!matches("//status = 'rejected'", r#"{"status":"rejected"}"#));
}

#[test]
fn regex_rules_match_the_raw_body() {
    assert!(matches("regex:(?i)duplicate|rejected", "Lead REJECTED: seen before"));
    assert!(!matches("regex:(?i)duplicate|rejected", "OK"));
}

#[test]
fn a_matching_reject_rule_rejects_with_the_extracted_reason() {
    let h = HeaderMap::new();
    let r = rules(Some(r#"$.status == "rejected""#), None, Some("$.message"));
    let body = r#"{"status":"rejected","message":"dup"}"#;
    let e = classify(200, &h, body, &r, NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert_eq!(e.message, "dup");
    assert_eq!(e.status, Some(200));
    assert_eq!(e.response, body);
    assert!(classify(200, &h, r#"{"status":"accepted"}"#, &r, NOW).is_ok());

    // Without a reason the message names the rule.
    let r = rules(Some("regex:duplicate"), None, None);
    let e = classify(200, &h, "duplicate", &r, NOW).unwrap_err();
    assert_eq!(e.message, "rejected: the answer matched reject_if `regex:duplicate`");

    // An extractor finding nothing falls back to the default too.
    let r = rules(Some("regex:duplicate"), None, Some("$.message"));
    let e = classify(200, &h, "duplicate", &r, NOW).unwrap_err();
    assert!(e.message.contains("reject_if"), "{}", e.message);
}

#[test]
fn accept_if_rejects_answers_it_does_not_match() {
    let h = HeaderMap::new();
    let r = rules(None, Some("//result = 'accepted'"), Some("//reason"));
    assert!(classify(200, &h, "<r><result>accepted</result></r>", &r, NOW).is_ok());
    let e = classify(200, &h, "<r><result>declined</result><reason>Out of area</reason></r>", &r, NOW)
        .unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Permanent, "Out of area"));
    let e = classify(200, &h, "<html>oops</html>", &r, NOW).unwrap_err();
    assert_eq!(e.message, "rejected: the answer did not match accept_if `//result = 'accepted'`");
    // reject_if is checked first.
    let r = rules(Some("regex:dup"), Some("regex:.*"), None);
    assert!(classify(200, &h, "dup", &r, NOW).unwrap_err().message.contains("reject_if"));
}

#[test]
fn extractors_take_the_first_value_or_capture() {
    let h = HeaderMap::new();
    let reject = Some("regex:.");
    let message = |reason: &str, body: &str| classify(200, &h, body, &rules(reject, None, Some(reason)), NOW);
    assert_eq!(message("regex:reason=(\\w+)", "x reason=dup y").unwrap_err().message, "dup");
    assert_eq!(message("$.code", r#"{"code":17}"#).unwrap_err().message, "17");
    assert_eq!(message("$.errors[*]", r#"{"errors":["a","b"]}"#).unwrap_err().message, "a");
    assert_eq!(message("//reason", "<r><reason>  Bad zip </reason></r>").unwrap_err().message, "Bad zip");
    assert_eq!(message("//reason/@why", "<r><reason why='late'/></r>").unwrap_err().message, "late");
    let long = format!(r#"{{"m":"{}"}}"#, "x".repeat(5000));
    assert_eq!(message("$.m", &long).unwrap_err().message.len(), REASON_KEEP);

    // Non-2xx answers append the reason to the status line.
    let r = rules(None, None, Some("$.error"));
    let e = classify(400, &h, r#"{"error":"phone is invalid"}"#, &r, NOW).unwrap_err();
    assert_eq!(e.message, "HTTP 400 Bad Request: phone is invalid");
}

#[test]
fn responses_are_truncated_to_the_keep_limit() {
    let body = "é".repeat(RESPONSE_KEEP); // twice the limit in bytes
    let ok = classify(200, &HeaderMap::new(), &body, &ResponseRules::default(), NOW).unwrap();
    assert_eq!(ok.response.len(), RESPONSE_KEEP);
    let e = classify(500, &HeaderMap::new(), &body, &ResponseRules::default(), NOW).unwrap_err();
    assert_eq!(e.response.len(), RESPONSE_KEEP);
}

/// `reject_if`, `accept_if`, `reason`, and the start of the expected error.
type CompileCase<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

#[test]
fn compile_errors_name_the_rule_and_position() {
    let cases: [CompileCase<'_>; 13] = [
        (Some("status == 1"), None, None, "reject_if: at position 1: expected a JSONPath"),
        (None, Some("$.status = 'x'"), None, "accept_if: at position 10: JSONPath compares with `==`"),
        (
            Some("$.status == rejected"),
            None,
            None,
            "reject_if: at position 13: after `==`: `rejected` is not a JSON value",
        ),
        (Some("$.status =="), None, None, "reject_if: at position 12: after `==`: expected a value"),
        (Some("$.a.[b"), None, None, "reject_if: at position"),
        (Some("$.a > 1"), None, None, "reject_if: at position 5: only"),
        (Some("//status == 'x'"), None, None, "reject_if: at position 10: XPath compares with `=`"),
        (
            Some("//status = rejected"),
            None,
            None,
            "reject_if: at position 12: after `=`: expected a quoted string",
        ),
        (Some("/a[1] = 'x'"), None, None, "reject_if: at position 3: invalid XPath"),
        (Some("  regex:(unclosed"), None, None, "reject_if: at position 9: invalid regex"),
        (Some("regex:"), None, None, "reject_if: at position 7: the regex is empty"),
        (None, None, Some("regex:dup"), "reason: at position 7: the regex needs a capture group"),
        (None, None, Some("status"), "reason: at position 1: expected a JSONPath"),
    ];
    for (reject_if, accept_if, reason, expected) in cases {
        let e = ResponseRules::compile(reject_if, accept_if, reason).unwrap_err();
        assert!(e.starts_with(expected), "{reject_if:?} {accept_if:?} {reason:?}: {e}");
    }
    let e = ResponseRules::compile(Some("$.status == 'x' "), Some("$['a"), None).unwrap_err();
    assert!(e.starts_with("accept_if: at position 3: unterminated quoted string"), "{e}");
}
