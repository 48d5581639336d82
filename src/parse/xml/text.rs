//! Character-level rules: references, attribute values, names and error positions.
//!
//! Nothing here expands a user-defined entity: only the five predefined entities and
//! numeric character references exist, so no input can grow in memory beyond its size.

use crate::parse::ParseError;

/// What a `&…;` reference stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reference {
    /// A predefined entity or a character reference: this character.
    Char(char),
    /// Not a reference at all (`&` followed by something that is not a name, as in
    /// `Smith & Sons; Ltd`): the text stays as written.
    Literal,
}

/// Resolves the part of a reference between `&` and `;`.
///
/// An undefined entity name (`&foo;`) or a malformed or forbidden character reference
/// is an error whose message names it; we never look entities up anywhere else.
pub(super) fn resolve_reference(name: &str) -> Result<Reference, String> {
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            if let Some(number) = name.strip_prefix('#') {
                return char_reference(number).map(Reference::Char);
            }
            if is_xml_name(name) {
                return Err(format!(
                    "undefined entity &{name}; (only &lt; &gt; &amp; &apos; &quot; and \
                     numeric character references are allowed)"
                ));
            }
            return Ok(Reference::Literal);
        }
    };
    Ok(Reference::Char(ch))
}

/// `&#233;` / `&#xE9;` (the part after `#`), restricted to characters XML 1.0 allows.
fn char_reference(number: &str) -> Result<char, String> {
    let (digits, radix) = match number.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    let malformed = || format!("malformed character reference &#{number};");
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(malformed());
    }
    let code = u32::from_str_radix(digits, radix).map_err(|_| malformed())?;
    match char::from_u32(code) {
        Some(c) if is_xml_char(c) => Ok(c),
        _ => Err(format!("character reference &#{number}; is not an allowed XML character")),
    }
}

/// XML 1.0 `Char`: tab, newlines and everything from space up, minus U+FFFE/U+FFFF.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The XML white-space characters (space, tab, CR, LF). Not NBSP: outside the root
/// element only these may appear.
pub(super) fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte offset of the first non-white-space character, if any.
pub(super) fn first_non_space(s: &str) -> Option<usize> {
    s.bytes().position(|b| !is_xml_space(b))
}

/// Decodes an attribute value as written between the quotes: references resolved,
/// literal tabs and line ends turned into spaces (XML attribute-value normalisation),
/// the result trimmed like element text.
pub(super) fn attribute_value(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        let (literal, from_amp) = rest.split_at(amp);
        push_normalized(&mut out, literal);
        let after = from_amp.get(1..).unwrap_or("");
        // A reference ends at the first `;`, unless another `&` comes first.
        let end = after.find([';', '&']).filter(|&i| after.as_bytes().get(i) == Some(&b';'));
        match end.map(|i| (after.get(..i).unwrap_or(""), after.get(i + 1..).unwrap_or(""))) {
            Some((name, tail)) => match resolve_reference(name)? {
                Reference::Char(c) => {
                    out.push(c);
                    rest = tail;
                }
                Reference::Literal => {
                    out.push('&');
                    rest = after;
                }
            },
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    push_normalized(&mut out, rest);
    Ok(trim_owned(out))
}

fn push_normalized(out: &mut String, literal: &str) {
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(' ');
            }
            '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Trims without reallocating when nothing needs trimming.
pub(super) fn trim_owned(s: String) -> String {
    let trimmed = s.trim();
    if trimmed.len() == s.len() { s } else { trimmed.to_owned() }
}

/// A loose XML `Name` check: what a name may start with and contain. Non-ASCII
/// characters are accepted wholesale; what matters is that `/`, `@`, quotes, `=`,
/// `<`, `&` and white space never end up inside a field name or a mapping path.
pub(super) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':' || !c.is_ascii();
    start_ok(first) && chars.all(|c| start_ok(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

/// `ns:lead` → `lead`; names without a prefix stay as they are.
pub(super) fn local_name(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// 1-based line and column (in characters) of byte `offset` in `text`. A line ends at
/// LF, CRLF or a lone CR, so LF and CRLF documents give the same positions.
pub(super) fn line_column(text: &[u8], offset: u64) -> (u64, u64) {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
    let prefix = text.get(..end).unwrap_or(text);
    let (mut line, mut column) = (1u64, 1u64);
    let mut after_cr = false;
    for &b in prefix {
        match b {
            b'\n' if after_cr => {}
            b'\n' | b'\r' => {
                line += 1;
                column = 1;
            }
            // UTF-8 continuation bytes belong to the character already counted.
            b if b & 0xC0 == 0x80 => {}
            _ => column += 1,
        }
        after_cr = b == b'\r';
    }
    (line, column)
}

/// An error at byte `offset` of the (decoded) document.
pub(super) fn error_at(text: &[u8], offset: u64, message: impl Into<String>) -> ParseError {
    let (line, column) = line_column(text, offset);
    ParseError::at(message, line, column)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_to_characters_or_errors() {
        assert_eq!(resolve_reference("amp"), Ok(Reference::Char('&')));
        assert_eq!(resolve_reference("#233"), Ok(Reference::Char('é')));
        assert_eq!(resolve_reference("#xE9"), Ok(Reference::Char('é')));
        assert_eq!(resolve_reference(" Sons"), Ok(Reference::Literal));
        assert!(resolve_reference("foo").unwrap_err().contains("&foo;"));
        assert!(resolve_reference("#0").unwrap_err().contains("not an allowed"));
        assert!(resolve_reference("#1").unwrap_err().contains("not an allowed"));
        assert!(resolve_reference("#xD800").unwrap_err().contains("not an allowed"));
        assert!(resolve_reference("#99999999999").unwrap_err().contains("malformed"));
        assert!(resolve_reference("#").unwrap_err().contains("malformed"));
        assert!(resolve_reference("#+5").unwrap_err().contains("malformed"));
        assert!(resolve_reference("#x").unwrap_err().contains("malformed"));
    }

    #[test]
    fn attribute_values_are_unescaped_normalised_and_trimmed() {
        assert_eq!(attribute_value(" a &amp; b ").as_deref(), Ok("a & b"));
        assert_eq!(attribute_value("AT&T").as_deref(), Ok("AT&T"));
        assert_eq!(attribute_value("a & b; c").as_deref(), Ok("a & b; c"));
        assert_eq!(attribute_value("x&#10;y").as_deref(), Ok("x\ny"));
        assert_eq!(attribute_value("x\r\ny\tz").as_deref(), Ok("x y z"));
        assert_eq!(attribute_value("&").as_deref(), Ok("&"));
        assert!(attribute_value("&bogus;").unwrap_err().contains("&bogus;"));
    }

    #[test]
    fn names() {
        assert!(is_xml_name("first_name"));
        assert!(is_xml_name("ns:lead"));
        assert!(is_xml_name("prénom"));
        assert!(!is_xml_name("a/b"));
        assert!(!is_xml_name("a@b"));
        assert!(!is_xml_name("1a"));
        assert!(!is_xml_name(""));
        assert_eq!(local_name("ns:lead"), "lead");
        assert_eq!(local_name("lead"), "lead");
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(line_column(b"", 0), (1, 1));
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column(b"ab\r\ncd", 5), (2, 2));
        assert_eq!(line_column(b"ab\rcd", 4), (2, 2));
        assert_eq!(line_column("é<".as_bytes(), 2), (1, 2));
        assert_eq!(line_column(b"abc", 99), (1, 4));
    }
}
