//! What a buyer's HTTP answer means: accepted, rejected (no retry), retry later, or gone.
//!
//! The status decides first:
//!
//! | status | outcome |
//! |---|---|
//! | 2xx | accepted, unless a response rule says otherwise (below) |
//! | 3xx | [`Transient`](ErrorKind::Transient): redirects are not followed |
//! | 408, 5xx | `Transient` |
//! | 429 | [`RateLimited`](ErrorKind::RateLimited), with `Retry-After` when given |
//! | 503 with `Retry-After` | `RateLimited` |
//! | 410 | [`Gone`](ErrorKind::Gone): the buyer is disabled and an operator alerted |
//! | other 4xx | [`Permanent`](ErrorKind::Permanent) |
//!
//! `Retry-After` is read as delay-seconds or an HTTP-date (IMF-fixdate, RFC 850 or
//! asctime); clamping it is the outbox's business.
//!
//! Many buyers answer `200 OK` and put the verdict in the body, so a buyer's config can
//! declare how to read a 2xx answer ([`ResponseRules`]):
//!
//! - `reject_if`: when it matches, the lead is rejected ([`Permanent`](ErrorKind::Permanent));
//! - `accept_if`: when set and it does *not* match, the lead is rejected;
//! - `reason`: an extractor giving the buyer's reason text, used as the error message
//!   (and appended to the status line of a non-2xx answer).
//!
//! A rule is one of:
//!
//! - **JSONPath** (RFC 9535) on a JSON answer: `$.status == "rejected"`,
//!   `$.result.code != 0`, `$.accepted == false`, `$.errors[0].message == 'dup'`, or a bare
//!   path, `$.error`, which matches when it selects a value that is neither `null` nor
//!   `false`. The right side is a JSON value (a string may also be single-quoted);
//!   numbers compare by value (`1 == 1.0`). `==` matches when *any* selected value equals
//!   it, and `!=` is exactly its negation (so a missing field is "not equal").
//! - **XPath** (a subset, see the `xpath` module) on an XML answer: `/response/status =
//!   'rejected'`, `//status != "ok"`, `//error/@code = 42`, or a bare path (`//error`),
//!   which matches when it selects anything. Values are compared as trimmed text (an
//!   unquoted number compares numerically); `=` and `!=` behave as in the JSONPath case.
//! - **Regex** on the raw body: `regex:(?i)duplicate|rejected` (Rust `regex` syntax,
//!   unanchored).
//!
//! An answer that is not JSON (or not XML) matches no JSONPath (XPath) rule. Rules see
//! the body as kept, that is at most [`RESPONSE_KEEP`] bytes.
//!
//! The `reason` extractor is a JSONPath or XPath (the first selected value; a JSON
//! value that is not a string is shown as JSON) or `regex:` with a capture group (the
//! first group's text, as in `regex:reason=(\w+)`).

use std::cell::OnceCell;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde_json::Value;
use serde_json_path::JsonPath;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::xpath::XPath;
use crate::deliver::{Accepted, DeliveryError, ErrorKind, RESPONSE_KEEP, truncate};

/// Longest reason text kept from an answer.
const REASON_KEEP: usize = 1024;

const REGEX_PREFIX: &str = "regex:";

/// How to read a buyer's 2xx answer; the default has no rules (every 2xx is accepted).
#[derive(Debug, Clone, Default)]
pub struct ResponseRules {
    reject_if: Option<Rule>,
    accept_if: Option<Rule>,
    reason: Option<Extractor>,
}

/// A compiled condition on an answer body.
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Json(JsonPath, Cmp<Value>),
    Xml(XPath, Cmp<XmlLiteral>),
    Regex(Regex),
}

/// What the selected values are compared with.
#[derive(Debug, Clone)]
enum Cmp<T> {
    /// A bare path.
    Present,
    Eq(T),
    Ne(T),
}

#[derive(Debug, Clone)]
enum XmlLiteral {
    Text(String),
    Number(f64),
}

/// A compiled expression that pulls the buyer's reason text out of an answer.
#[derive(Debug, Clone)]
pub struct Extractor {
    source: String,
    from: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Json(JsonPath),
    Xml(XPath),
    Regex(Regex),
}

impl ResponseRules {
    /// Compiles the configured rules. Errors name the rule (`reject_if`, `accept_if`,
    /// `reason`) and the 1-based character position of the problem.
    pub fn compile(
        reject_if: Option<&str>,
        accept_if: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Self, String> {
        Ok(Self {
            reject_if: reject_if.map(|s| Rule::compile("reject_if", s)).transpose()?,
            accept_if: accept_if.map(|s| Rule::compile("accept_if", s)).transpose()?,
            reason: reason.map(|s| Extractor::compile("reason", s)).transpose()?,
        })
    }

    /// The buyer's reason, if the extractor finds one.
    fn reason(&self, answer: &Answer<'_>) -> Option<String> {
        self.reason.as_ref().and_then(|r| r.extract(answer))
    }
}

impl Rule {
    /// Compiles one rule; `name` is what error messages call it.
    pub fn compile(name: &str, source: &str) -> Result<Self, String> {
        let (offset, text) = trimmed(source);
        let err = |at: usize, message: &str| format!("{name}: at position {}: {message}", offset + at);
        let test = if let Some(pattern) = text.strip_prefix(REGEX_PREFIX) {
            Test::Regex(compile_regex(pattern).map_err(|m| err(REGEX_PREFIX.len() + 1, &m))?)
        } else if text.starts_with('$') {
            let (path, cmp) = match split_comparison(text, Lang::Json).map_err(|(at, m)| err(at, &m))? {
                None => (text, Cmp::Present),
                Some(split) => {
                    let literal = json_literal(split.literal)
                        .map_err(|m| err(split.literal_at, &format!("after `{}`: {m}", split.op)))?;
                    (split.path, if split.negated { Cmp::Ne(literal) } else { Cmp::Eq(literal) })
                }
            };
            let path = JsonPath::parse(path.trim_end())
                .map_err(|e| err(e.position(), &format!("invalid JSONPath: {}", e.message())))?;
            Test::Json(path, cmp)
        } else if text.starts_with('/') {
            let (path, cmp) = match split_comparison(text, Lang::Xml).map_err(|(at, m)| err(at, &m))? {
                None => (text, Cmp::Present),
                Some(split) => {
                    let literal = xml_literal(split.literal)
                        .map_err(|m| err(split.literal_at, &format!("after `{}`: {m}", split.op)))?;
                    (split.path, if split.negated { Cmp::Ne(literal) } else { Cmp::Eq(literal) })
                }
            };
            let path =
                XPath::parse(path.trim_end()).map_err(|(at, m)| err(at, &format!("invalid XPath: {m}")))?;
            Test::Xml(path, cmp)
        } else {
            return Err(err(1, EXPECTED_EXPRESSION));
        };
        Ok(Self { source: text.to_owned(), test })
    }

    /// The rule as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn matches(&self, answer: &Answer<'_>) -> bool {
        match &self.test {
            Test::Regex(re) => re.is_match(answer.body),
            Test::Json(path, cmp) => {
                let nodes = answer.json().map(|v| path.query(v).all()).unwrap_or_default();
                match cmp {
                    Cmp::Present => nodes.iter().any(|v| !matches!(v, Value::Null | Value::Bool(false))),
                    Cmp::Eq(lit) => nodes.iter().any(|v| json_eq(v, lit)),
                    Cmp::Ne(lit) => !nodes.iter().any(|v| json_eq(v, lit)),
                }
            }
            Test::Xml(path, cmp) => {
                let values = path.select(answer.body);
                match cmp {
                    Cmp::Present => !values.is_empty(),
                    Cmp::Eq(lit) => values.iter().any(|v| xml_eq(v, lit)),
                    Cmp::Ne(lit) => !values.iter().any(|v| xml_eq(v, lit)),
                }
            }
        }
    }
}

impl Extractor {
    /// Compiles an extractor; `name` is what error messages call it.
    pub fn compile(name: &str, source: &str) -> Result<Self, String> {
        let (offset, text) = trimmed(source);
        let err = |at: usize, message: &str| format!("{name}: at position {}: {message}", offset + at);
        let from = if let Some(pattern) = text.strip_prefix(REGEX_PREFIX) {
            let re = compile_regex(pattern).map_err(|m| err(REGEX_PREFIX.len() + 1, &m))?;
            if re.captures_len() < 2 {
                return Err(err(
                    REGEX_PREFIX.len() + 1,
                    "the regex needs a capture group for the reason, as in `regex:reason=(\\w+)`",
                ));
            }
            Source::Regex(re)
        } else if text.starts_with('$') {
            Source::Json(
                JsonPath::parse(text)
                    .map_err(|e| err(e.position(), &format!("invalid JSONPath: {}", e.message())))?,
            )
        } else if text.starts_with('/') {
            Source::Xml(XPath::parse(text).map_err(|(at, m)| err(at, &format!("invalid XPath: {m}")))?)
        } else {
            return Err(err(1, EXPECTED_EXPRESSION));
        };
        Ok(Self { source: text.to_owned(), from })
    }

    /// The extractor as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn extract(&self, answer: &Answer<'_>) -> Option<String> {
        let text = match &self.from {
            Source::Regex(re) => re.captures(answer.body)?.get(1)?.as_str().to_owned(),
            Source::Json(path) => match path.query(answer.json()?).first()? {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            Source::Xml(path) => path.select(answer.body).into_iter().next()?,
        };
        let text = text.trim();
        (!text.is_empty()).then(|| truncate(text.to_owned(), REASON_KEEP))
    }
}

const EXPECTED_EXPRESSION: &str =
    "expected a JSONPath (`$.status == \"rejected\"`), an XPath (`//status = 'rejected'`) or `regex:…`";

/// (1-based char offset to add to positions inside the trimmed text, the trimmed text).
fn trimmed(source: &str) -> (usize, &str) {
    let text = source.trim_start();
    let lead = source.len() - text.len();
    (source.get(..lead).map_or(0, |s| s.chars().count()), text.trim_end())
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("the regex is empty".into());
    }
    Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Json,
    Xml,
}

/// A rule split at its comparison operator.
#[derive(Debug)]
struct Split<'a> {
    path: &'a str,
    op: &'static str,
    negated: bool,
    literal: &'a str,
    /// 1-based character position of the literal.
    literal_at: usize,
}

/// Finds the comparison operator outside brackets, parentheses and quotes (JSONPath
/// filters such as `$[?@.a == 1]` keep theirs). JSON uses `==`/`!=`, XPath `=`/`!=`;
/// the other language's equality is refused with a hint.
fn split_comparison(text: &str, lang: Lang) -> Result<Option<Split<'_>>, (usize, String)> {
    let bytes = text.as_bytes();
    let position = |i: usize| text.get(..i).map_or(i, |s| s.chars().count()) + 1;
    let mut depth = 0usize;
    // The open quote character and where it opened.
    let mut quote: Option<(u8, usize)> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if let Some((q, _)) = quote {
            if b == b'\\' && lang == Lang::Json {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let (op, negated, len): (&'static str, bool, usize) = match (b, next) {
            (b'\'' | b'"', _) => {
                quote = Some((b, i));
                i += 1;
                continue;
            }
            (b'[' | b'(', _) => {
                depth += 1;
                i += 1;
                continue;
            }
            (b']' | b')', _) => {
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            _ if depth > 0 => {
                i += 1;
                continue;
            }
            (b'!', Some(b'=')) => ("!=", true, 2),
            (b'=', Some(b'=')) if lang == Lang::Json => ("==", false, 2),
            (b'=', Some(b'=')) => return Err((position(i), "XPath compares with `=`, not `==`".into())),
            (b'=', _) if lang == Lang::Xml => ("=", false, 1),
            (b'=', _) => return Err((position(i), "JSONPath compares with `==`, not `=`".into())),
            (b'<' | b'>', _) => {
                return Err((position(i), "only `==`/`=` and `!=` comparisons are supported".into()));
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let path = text.get(..i).unwrap_or_default();
        let after = text.get(i + len..).unwrap_or_default();
        let literal = after.trim_start();
        let literal_at = position(i + len + (after.len() - literal.len()));
        if path.trim().is_empty() {
            return Err((1, format!("expected a path before `{op}`")));
        }
        return Ok(Some(Split { path, op, negated, literal: literal.trim_end(), literal_at }));
    }
    if let Some((_, at)) = quote {
        return Err((position(at), "unterminated quoted string".into()));
    }
    Ok(None)
}

fn json_literal(text: &str) -> Result<Value, String> {
    if text.is_empty() {
        return Err("expected a value".into());
    }
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(Value::String(inner.to_owned()));
    }
    serde_json::from_str(text).map_err(|_| {
        format!("`{text}` is not a JSON value (write \"text\" or 'text', a number, true, false or null)")
    })
}

fn xml_literal(text: &str) -> Result<XmlLiteral, String> {
    for q in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q))
            && text.len() >= 2
        {
            return Ok(XmlLiteral::Text(inner.to_owned()));
        }
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && !text.is_empty() => Ok(XmlLiteral::Number(n)),
        _ => Err(format!("expected a quoted string ('text' or \"text\") or a number, found `{text}`")),
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y)
            }
        }
        _ => a == b,
    }
}

fn xml_eq(value: &str, literal: &XmlLiteral) -> bool {
    match literal {
        XmlLiteral::Text(t) => value == t,
        XmlLiteral::Number(n) => value.parse::<f64>().is_ok_and(|v| v == *n),
    }
}

/// The answer body, parsed as JSON at most once.
struct Answer<'a> {
    body: &'a str,
    json: OnceCell<Option<Value>>,
}

impl<'a> Answer<'a> {
    fn new(body: &'a str) -> Self {
        Self { body, json: OnceCell::new() }
    }

    fn json(&self) -> Option<&Value> {
        self.json.get_or_init(|| serde_json::from_str(self.body.trim_start_matches('\u{feff}')).ok()).as_ref()
    }
}

/// Classifies a buyer's answer (see the module docs). `body` is the answer as read
/// (leadgate reads at most [`RESPONSE_KEEP`] bytes); `now` dates a `Retry-After` HTTP-date.
pub fn classify(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    rules: &ResponseRules,
    now: OffsetDateTime,
) -> Result<Accepted, DeliveryError> {
    let response = truncate(body.to_owned(), RESPONSE_KEEP);
    let answer = Answer::new(&response);
    let fail = |kind: ErrorKind, message: String| DeliveryError {
        kind,
        message,
        status: Some(status),
        response: response.clone(),
    };
    // A non-2xx status line, with the buyer's reason when the extractor finds one.
    let line = |what: &str| {
        let mut message = format!("HTTP {}{what}", status_text(status));
        if let Some(reason) = rules.reason(&answer) {
            message.push_str(": ");
            message.push_str(&reason);
        }
        message
    };
    match status {
        200..=299 => {
            if let Some(rule) = &rules.reject_if
                && rule.matches(&answer)
            {
                let message = rules
                    .reason(&answer)
                    .unwrap_or_else(|| format!("rejected: the answer matched reject_if `{}`", rule.source));
                return Err(fail(ErrorKind::Permanent, message));
            }
            if let Some(rule) = &rules.accept_if
                && !rule.matches(&answer)
            {
                let message = rules.reason(&answer).unwrap_or_else(|| {
                    format!("rejected: the answer did not match accept_if `{}`", rule.source)
                });
                return Err(fail(ErrorKind::Permanent, message));
            }
            Ok(Accepted { status: Some(status), response })
        }
        300..=399 => {
            let location = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| format!(" (Location: {})", truncate(l.to_owned(), 512)))
                .unwrap_or_default();
            Err(fail(ErrorKind::Transient, line(&format!(", redirects are not followed{location}"))))
        }
        429 => Err(fail(ErrorKind::RateLimited { retry_after: retry_after(headers, now) }, line(""))),
        503 => match retry_after(headers, now) {
            Some(after) => Err(fail(ErrorKind::RateLimited { retry_after: Some(after) }, line(""))),
            None => Err(fail(ErrorKind::Transient, line(""))),
        },
        410 => Err(fail(ErrorKind::Gone, line(", the endpoint is gone"))),
        408 | 500..=599 => Err(fail(ErrorKind::Transient, line(""))),
        400..=499 => Err(fail(ErrorKind::Permanent, line(""))),
        _ => Err(fail(ErrorKind::Transient, line(", an unexpected status"))),
    }
}

/// `404 Not Found`.
fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The `Retry-After` delay: delay-seconds, or an HTTP-date relative to `now` (a date in
/// the past is zero). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let when = http_date(value)?;
    Some(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
}

/// Parses the three HTTP-date forms (RFC 9110 §5.6.7):
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` and
/// `Sun Nov  6 08:49:37 1994`. The weekday is not checked.
fn http_date(s: &str) -> Option<OffsetDateTime> {
    let tokens: Vec<&str> = s.split_ascii_whitespace().collect();
    let (day, month, year, hms) = match tokens.as_slice() {
        [_, day, month, year, hms, "GMT"] if year.len() == 4 => (*day, *month, year.parse().ok()?, *hms),
        [_, dmy, hms, "GMT"] => {
            let mut parts = dmy.split('-');
            let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || yy.len() != 2 {
                return None;
            }
            let yy: i32 = yy.parse().ok()?;
            (day, month, if yy < 70 { 2000 + yy } else { 1900 + yy }, *hms)
        }
        [_, month, day, hms, year] if year.len() == 4 => (*day, *month, year.parse().ok()?, *hms),
        _ => return None,
    };
    let day: u8 = day.parse().ok()?;
    let mut clock = hms.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, sec) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, month_named(month)?, day).ok()?;
    let time = Time::from_hms(h, m, sec).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn month_named(name: &str) -> Option<Month> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    Month::try_from(u8::try_from(index + 1).ok()?).ok()
}

#[cfg(test)]
mod tests;
