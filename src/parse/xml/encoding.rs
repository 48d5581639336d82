//! From body bytes to text: UTF-8 (and its ASCII subset) as is, Latin-1 / Windows-1252
//! decoded here (no extra dependency), anything else refused by name.
//!
//! quick-xml is built without its `encoding` feature, so it reads UTF-8 only; this
//! module runs first and hands it UTF-8 in every case.

use std::borrow::Cow;

use super::text::{error_at, is_xml_space};
use crate::parse::ParseError;

/// How far into the body an XML declaration is looked for.
const DECLARATION_WINDOW: usize = 1024;

/// What a declared encoding label means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    /// UTF-8 or US-ASCII: the body must be valid UTF-8.
    Utf8,
    /// ISO-8859-1 and Windows-1252 (browsers treat the first as the second).
    Latin1,
    /// Anything else.
    Unsupported,
}

/// Decodes `body` (BOM already removed) into the text the XML reader parses.
///
/// - No declaration, or `UTF-8`/`US-ASCII` declared: the body must be valid UTF-8.
/// - `ISO-8859-1`/`Latin-1`/`Windows-1252` declared: a body that is valid UTF-8 is taken
///   as UTF-8 (vendors mislabel UTF-8 as Latin-1 all the time, and real Latin-1 text is
///   practically never valid UTF-8); otherwise it is decoded as Windows-1252.
/// - Any other label: accepted only when the body is pure ASCII (every ASCII-compatible
///   encoding reads it the same way), refused otherwise with the label in the message.
/// - UTF-16 (BOM or `<\0` pattern) is refused.
pub(super) fn decode(body: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    if body.starts_with(b"\xFE\xFF")
        || body.starts_with(b"\xFF\xFE")
        || body.starts_with(b"<\0")
        || body.starts_with(b"\0<")
    {
        return Err(ParseError::at("UTF-16 encoded XML is not supported; send UTF-8", 1, 1));
    }
    let utf8 = std::str::from_utf8(body);
    if let Ok(text) = utf8
        && text.is_ascii()
    {
        return Ok(Cow::Borrowed(text));
    }
    let declared = declared_encoding(body);
    let label = declared.map_or(Label::Utf8, |(name, _)| classify(name));
    match (label, utf8) {
        (Label::Utf8 | Label::Latin1, Ok(text)) => Ok(Cow::Borrowed(text)),
        (Label::Latin1, Err(_)) => Ok(Cow::Owned(body.iter().map(|&b| windows_1252(b)).collect())),
        (Label::Utf8, Err(e)) => {
            let at = e.valid_up_to();
            let byte = body.get(at).copied().unwrap_or(0);
            let hint =
                if declared.is_none() { " (declare encoding=\"ISO-8859-1\" if it is Latin-1)" } else { "" };
            Err(error_at(body, at as u64, format!("the body is not valid UTF-8 (byte 0x{byte:02X}){hint}")))
        }
        (Label::Unsupported, _) => {
            let (name, at) = declared.unwrap_or(("?", 0));
            Err(error_at(
                body,
                at as u64,
                format!("the declared encoding \"{name}\" is not supported; send UTF-8"),
            ))
        }
    }
}

fn classify(label: &str) -> Label {
    const UTF8: &[&str] = &["utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968"];
    const LATIN1: &[&str] = &[
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "iso-latin-1",
        "latin1",
        "latin-1",
        "l1",
        "windows-1252",
        "cp1252",
        "x-cp1252",
    ];
    let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(label));
    if is(UTF8) {
        Label::Utf8
    } else if is(LATIN1) {
        Label::Latin1
    } else {
        Label::Unsupported
    }
}

/// The `encoding` label of a leading `<?xml … ?>` declaration and the byte offset of the
/// declaration. Read loosely on purpose: vendors write typographic or missing quotes, so
/// the label is the first run of label characters after `encoding` and `=`.
fn declared_encoding(body: &[u8]) -> Option<(&str, usize)> {
    let start = body.iter().position(|&b| !is_xml_space(b))?;
    let window = body.get(start..body.len().min(start + DECLARATION_WINDOW))?;
    if !window.starts_with(b"<?xml") {
        return None;
    }
    let decl_end = window.windows(2).position(|w| w == b"?>")?;
    let decl = window.get(..decl_end)?;
    let at = decl.windows(8).position(|w| w.eq_ignore_ascii_case(b"encoding"))?;
    let after = decl.get(at + 8..)?;
    let eq = after.iter().position(|&b| b == b'=')?;
    let value = after.get(eq + 1..)?;
    let is_label = |b: &u8| b.is_ascii_alphanumeric() || b"._:-".contains(b);
    let from = value.iter().position(is_label)?;
    let value = value.get(from..)?;
    let len = value.iter().position(|b| !is_label(b)).unwrap_or(value.len());
    let label = std::str::from_utf8(value.get(..len)?).ok()?;
    Some((label, start))
}

/// Windows-1252, which is ISO-8859-1 except for printable characters in 0x80–0x9F.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
        '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}', '\u{90}',
        '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{2DC}',
        '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
    ];
    match b {
        0x80..=0x9F => HIGH.get(usize::from(b - 0x80)).copied().unwrap_or('\u{FFFD}'),
        _ => char::from(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn declared_labels_are_read_loosely() {
        let body = "<?xml version=“1.0” encoding=“ISO-8859-1”?><a/>".as_bytes();
        assert_eq!(declared_encoding(body), Some(("ISO-8859-1", 0)));
        assert_eq!(declared_encoding(b"\n <?xml version='1.0' encoding = 'utf-8' ?>"), Some(("utf-8", 2)));
        assert_eq!(declared_encoding(b"<?xml version='1.0'?><a/>"), None);
        assert_eq!(declared_encoding(b"<a encoding='x'/>"), None);
        assert_eq!(declared_encoding(b"<?xml encoding"), None);
    }

    #[test]
    fn latin1_is_decoded_and_mislabelled_utf8_kept() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><n>Jos\xE9 \x93Q\x94</n>";
        assert!(decode(latin1).unwrap().contains("José “Q”"));
        let utf8 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><n>José</n>";
        assert!(matches!(decode(utf8.as_bytes()), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn other_encodings_are_refused_by_name_unless_ascii() {
        let sjis = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n<n>\x83e</n>";
        let e = decode(sjis).unwrap_err();
        assert!(e.message.contains("\"Shift_JIS\""), "{e}");
        assert_eq!((e.line, e.column), (Some(1), Some(1)));
        let ascii = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><n>x</n>";
        assert!(decode(ascii).is_ok());
    }

    #[test]
    fn utf16_and_invalid_utf8_are_refused_with_a_position() {
        assert!(decode(b"\xFF\xFE<\0a\0").unwrap_err().message.contains("UTF-16"));
        assert!(decode(b"<\0a\0/\0>\0").unwrap_err().message.contains("UTF-16"));
        let e = decode(b"<a>\n  caf\xE9</a>").unwrap_err();
        assert!(e.message.contains("0xE9"), "{e}");
        assert_eq!((e.line, e.column), (Some(2), Some(6)));
    }
}
