//! Small text helpers shared by the field normalizers.

use serde_json::Value;

/// A value's text when it is a single scalar; `None` for lists and objects.
///
/// Numbers use serde_json's own decimal form (`145000`, never `145000.0`), so an id sent
/// as a JSON integer keeps every digit serde_json parsed.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Empty strings (after trimming), `null` and empty lists/objects carry nothing: they are
/// treated as if the vendor had not sent the field at all.
pub(crate) fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) | Value::Bool(_) => false,
    }
}

/// A single-line field: trimmed, inner runs of whitespace collapsed to one space, control
/// characters dropped (vendors paste tabs, NBSPs and stray `\u{0}` into form fields).
pub(crate) fn single_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Longest stretch of a vendor value quoted in a problem message: enough to recognise it,
/// bounded so a 10 MB field cannot turn into a 10 MB answer or log line.
const QUOTE_MAX_CHARS: usize = 64;

/// The value as problem messages quote it: in backticks, cut at [`QUOTE_MAX_CHARS`].
pub(crate) fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(QUOTE_MAX_CHARS).collect();
    if chars.next().is_some() { format!("`{head}…`") } else { format!("`{head}`") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_line_collapses_whitespace_and_drops_controls() {
        assert_eq!(single_line("  San \t Francisco\r\n "), "San Francisco");
        assert_eq!(single_line("a\u{0}b\u{a0}\u{a0}c"), "a b c");
        assert_eq!(single_line("   "), "");
    }

    #[test]
    fn absent_values() {
        assert!(is_absent(&json!(null)));
        assert!(is_absent(&json!("  ")));
        assert!(is_absent(&json!([])));
        assert!(is_absent(&json!({})));
        assert!(!is_absent(&json!(0)));
        assert!(!is_absent(&json!(false)));
        assert!(!is_absent(&json!("x")));
    }

    #[test]
    fn scalar_text_keeps_numbers_exact() {
        assert_eq!(scalar_text(&json!(145000)).as_deref(), Some("145000"));
        assert_eq!(scalar_text(&json!(9007199254740993u64)).as_deref(), Some("9007199254740993"));
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(scalar_text(&json!(["a"])), None);
    }

    #[test]
    fn quote_is_bounded() {
        assert_eq!(quote("abc"), "`abc`");
        let long = "é".repeat(1000);
        assert_eq!(quote(&long).chars().count(), QUOTE_MAX_CHARS + 3);
    }
}
