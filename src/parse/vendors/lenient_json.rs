//! A JSON reader for vendor payloads: strict JSON, plus the deviations a format chooses
//! to tolerate, switched on one by one ([`Tolerance`]).
//!
//! Why not serde_json: vendor formats need three things it does not give.
//! - **Named tolerance.** Real vendors send raw newlines inside strings and trailing
//!   commas; each format decides whether that is accepted, and everything else is still
//!   refused with the line and column.
//! - **Exact ids.** An integer too large for 64 bits becomes a *string of its digits*,
//!   never an `f64`: a 25-digit id is kept exact, whatever the vendor's JSON library did.
//! - **Positions of values**, so the intake can redact a secret (`google_key`) from the
//!   stored raw body without re-serialising (and so changing) the rest of it.
//!
//! Duplicate keys are refused (which one would be meant?), as are comments, single
//! quotes, bare words, `NaN`, leading zeros and anything after the document. The reader
//! is iterative per value and bounded by `max_depth`, so it cannot overflow the stack.

use std::ops::Range;

use serde_json::{Map, Number, Value};

use crate::parse::ParseError;

/// Deviations from RFC 8259 that a format accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tolerance {
    /// Raw control characters (newline, tab, CR …) inside strings, kept as they are.
    pub control_chars_in_strings: bool,
    /// A comma right before `}` or `]`.
    pub trailing_commas: bool,
}

impl Tolerance {
    /// Strict RFC 8259.
    pub const STRICT: Tolerance = Tolerance { control_chars_in_strings: false, trailing_commas: false };
    /// What hand-built and pasted payloads get wrong most: raw newlines and trailing commas.
    pub const HAND_MADE: Tolerance = Tolerance { control_chars_in_strings: true, trailing_commas: true };
}

/// A parsed document and where the top-level members' values sit in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// Byte range of each top-level member's value (quotes included), by key.
    pub spans: Vec<(String, Range<usize>)>,
}

impl Document {
    /// Where the top-level member `key`'s value is in the input.
    pub fn span(&self, key: &str) -> Option<Range<usize>> {
        self.spans.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone())
    }
}

/// Parses `raw` (a UTF-8 byte-order mark is skipped) with the given tolerance.
pub fn parse(raw: &[u8], tolerance: Tolerance, max_depth: usize) -> Result<Document, ParseError> {
    let start = if raw.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut r = Reader { raw, pos: start, tolerance, max_depth, spans: Vec::new() };
    r.skip_ws();
    if r.pos >= raw.len() {
        return Err(r.error_at("the body is empty; expected a JSON document", r.pos));
    }
    let value = r.value(0)?;
    r.skip_ws();
    if r.pos < raw.len() {
        return Err(r.error_at("unexpected characters after the JSON document", r.pos));
    }
    Ok(Document { value, spans: r.spans })
}

/// Line and column (1-based, in characters) of byte `offset` in `raw`.
pub fn line_column(raw: &[u8], offset: usize) -> (u64, u64) {
    let before = &raw[..offset.min(raw.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() as u64 + 1;
    (line, column)
}

struct Reader<'a> {
    raw: &'a [u8],
    pos: usize,
    tolerance: Tolerance,
    max_depth: usize,
    spans: Vec<(String, Range<usize>)>,
}

impl Reader<'_> {
    fn error_at(&self, message: impl Into<String>, offset: usize) -> ParseError {
        let (line, column) = line_column(self.raw, offset);
        ParseError::at(format!("invalid JSON: {}", message.into()), line, column)
    }

    fn peek(&self) -> Option<u8> {
        self.raw.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'\'') => Err(self.error_at("strings must use double quotes, not single quotes", self.pos)),
            Some(b'/') => Err(self.error_at("comments are not allowed in JSON", self.pos)),
            Some(b'}' | b']') => Err(self.error_at("expected a value, found a closing bracket", self.pos)),
            Some(b',') => Err(self.error_at("expected a value, found a comma", self.pos)),
            Some(_) => Err(self
                .error_at("expected a value (string, number, object, array, true, false or null)", self.pos)),
            None => Err(self.error_at("the document ends in the middle of a value", self.pos)),
        }
    }

    fn depth_check(&self, depth: usize) -> Result<(), ParseError> {
        if depth > self.max_depth {
            return Err(self.error_at(format!("nested deeper than {} levels", self.max_depth), self.pos));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.depth_check(depth)?;
        self.pos += 1; // {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            let key_at = self.pos;
            match self.peek() {
                Some(b'"') => {}
                Some(b'}') => {
                    // Only reachable after a comma.
                    if self.tolerance.trailing_commas {
                        self.pos += 1;
                        return Ok(Value::Object(map));
                    }
                    return Err(self.error_at("trailing comma before `}`", key_at));
                }
                Some(b'\'') => {
                    return Err(self.error_at("keys must use double quotes, not single quotes", key_at));
                }
                None => return Err(self.error_at("the document ends inside an object", key_at)),
                Some(_) => return Err(self.error_at("expected a key in double quotes", key_at)),
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error_at(format!("expected `:` after the key `{}`", short(&key)), self.pos));
            }
            self.pos += 1;
            self.skip_ws();
            let value_at = self.pos;
            let value = self.value(depth)?;
            if map.contains_key(&key) {
                return Err(self.error_at(format!("the key `{}` appears twice", short(&key)), key_at));
            }
            if depth == 1 {
                self.spans.push((key.clone(), value_at..self.pos));
            }
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                None => return Err(self.error_at("the document ends inside an object", self.pos)),
                Some(_) => return Err(self.error_at("expected `,` or `}` after a member", self.pos)),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.depth_check(depth)?;
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            if self.peek() == Some(b']') {
                if self.tolerance.trailing_commas {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                return Err(self.error_at("trailing comma before `]`", self.pos));
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error_at("the document ends inside an array", self.pos)),
                Some(_) => return Err(self.error_at("expected `,` or `]` after an element", self.pos)),
            }
        }
    }

    fn word(&mut self, word: &str, value: Value) -> Result<Value, ParseError> {
        if self.raw[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error_at("expected a value (bare words are not JSON; quote strings)", self.pos))
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let int_len = self.pos - int_start;
        if int_len == 0 {
            return Err(self.error_at("a number needs digits", self.pos));
        }
        if int_len > 1 && self.raw[int_start] == b'0' {
            return Err(self.error_at("numbers must not have leading zeros (quote ids such as `007`)", start));
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            let digits = self.pos;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.error_at("a decimal point needs digits after it", self.pos));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let digits = self.pos;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.error_at("an exponent needs digits", self.pos));
            }
        }
        // ASCII by construction.
        let text = std::str::from_utf8(&self.raw[start..self.pos]).unwrap_or_default();
        if integer {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::Number(u.into()));
            }
            // Beyond 64 bits: the digits, exactly, rather than a rounded float.
            return Ok(Value::String(text.to_owned()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(Value::Number(n)),
            _ => Err(self.error_at("the number is out of range", start)),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1; // "
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error_at("the string starting here is never closed", open));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    let at = self.pos;
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.error_at("the string starting here is never closed", open));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0C),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape(at)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error_at("invalid escape sequence in a string", at)),
                    }
                }
                0x00..=0x1F => {
                    if !self.tolerance.control_chars_in_strings {
                        return Err(self.error_at(
                            "a raw control character (e.g. a line break) inside a string; escape it as \\n",
                            self.pos,
                        ));
                    }
                    out.push(b);
                    self.pos += 1;
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|e| {
            // Point at the first bad byte in the input.
            let bad = open + 1 + e.utf8_error().valid_up_to();
            self.error_at("the string is not valid UTF-8", bad.min(self.pos))
        })
    }

    fn hex4(&mut self, at: usize) -> Result<u32, ParseError> {
        let digits =
            self.raw.get(self.pos..self.pos + 4).ok_or_else(|| self.error_at("incomplete \\u escape", at))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error_at("invalid \\u escape", at))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.error_at("invalid \\u escape", at))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let first = self.hex4(at)?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.raw[self.pos..].starts_with(b"\\u") {
                return Err(self.error_at("a lone UTF-16 surrogate in a \\u escape", at));
            }
            self.pos += 2;
            let second = self.hex4(at)?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.error_at("a lone UTF-16 surrogate in a \\u escape", at));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error_at("a lone UTF-16 surrogate in a \\u escape", at))
    }
}

/// A key as messages quote it: bounded, so a huge key cannot make a huge message.
fn short(key: &str) -> String {
    let head: String = key.chars().take(40).collect();
    if head.len() < key.len() { format!("{head}…") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strict(s: &str) -> Result<Value, ParseError> {
        parse(s.as_bytes(), Tolerance::STRICT, 32).map(|d| d.value)
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}}"#;
        assert_eq!(strict(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(strict(" \u{FEFF}").unwrap_err().line, Some(1));
        assert_eq!(parse(b"\xEF\xBB\xBF{}", Tolerance::STRICT, 4).unwrap().value, json!({}));
    }

    #[test]
    fn huge_integers_keep_every_digit() {
        let v = strict(
            r#"{"id": 9007199254740993, "big": 123456789012345678901234567890, "neg": -9223372036854775808}"#,
        )
        .unwrap();
        assert_eq!(v["id"].as_u64(), Some(9_007_199_254_740_993));
        assert_eq!(v["big"], json!("123456789012345678901234567890"));
        assert_eq!(v["neg"].as_i64(), Some(i64::MIN));
    }

    #[test]
    fn tolerance_is_explicit() {
        let raw_newline = "{\"a\": \"line one\nline two\"}";
        let e = strict(raw_newline).unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(16)));
        assert!(e.message.contains("control character"), "{}", e.message);
        let d = parse(raw_newline.as_bytes(), Tolerance::HAND_MADE, 8).unwrap();
        assert_eq!(d.value["a"], "line one\nline two");

        let trailing = "{\n  \"a\": [1, 2,],\n  \"b\": 1,\n}";
        let e = strict(trailing).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(14)));
        assert!(e.message.contains("trailing comma"), "{}", e.message);
        let d = parse(trailing.as_bytes(), Tolerance::HAND_MADE, 8).unwrap();
        assert_eq!(d.value, json!({"a": [1, 2], "b": 1}));
    }

    #[test]
    fn everything_else_is_refused_with_a_position() {
        for (bad, what) in [
            ("{'a': 1}", "single quotes"),
            ("{\"a\": 1} x", "after the JSON"),
            ("{\"a\": 01}", "leading zeros"),
            ("{\"a\": NaN}", "expected a value"),
            ("{\"a\": tru}", "bare words"),
            ("{\"a\": 1 // c\n}", "expected `,`"),
            ("{\"a\": 1, \"a\": 2}", "appears twice"),
            ("{\"a\": \"\\x\"}", "invalid escape"),
            ("{\"a\": \"\\ud800\"}", "surrogate"),
            ("{\"a\" 1}", "expected `:`"),
            ("{\"a\": [1 2]}", "expected `,` or `]`"),
            ("{\"a\": \"open", "never closed"),
            ("", "empty"),
            ("{\"a\": 1e999}", "out of range"),
        ] {
            let e = strict(bad).unwrap_err();
            assert!(e.message.contains(what), "{bad:?}: {}", e.message);
            assert!(e.line.is_some() && e.column.is_some(), "{bad:?}");
        }
        let e = parse(b"{\"a\": \"\xFF\"}", Tolerance::STRICT, 4).unwrap_err();
        assert!(e.message.contains("UTF-8"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(strict(&deep).unwrap_err().message.contains("nested deeper"));
    }

    #[test]
    fn top_level_spans_point_at_values() {
        let text = "{\"k\": \"secret\", \"n\": {\"k\": 1}, \"z\": 12}";
        let d = parse(text.as_bytes(), Tolerance::STRICT, 8).unwrap();
        assert_eq!(&text[d.span("k").unwrap()], "\"secret\"");
        assert_eq!(&text[d.span("z").unwrap()], "12");
        assert_eq!(d.spans.len(), 3);
    }

    #[test]
    fn positions_count_characters_and_crlf_lines() {
        let e = strict("{\r\n\"é\": x}").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(6)));
    }
}
