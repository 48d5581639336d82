//! Phone numbers: parsed into E.164 plus an optional extension.
//!
//! The vendor's text is first reduced to its digits (and a leading `+`) here, and only
//! that clean string goes to `phonenumber`: the crate has panicked on malformed input
//! before (rust-phonenumber issue #43), and the gateway must not panic on any input.
//! Validity is `phonenumber`'s metadata check for the region, so `(415) 555-0142` passes
//! and `555-0142` (no area code) does not: an incomplete number is never completed by
//! guessing.

use std::fmt;
use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id;

use super::FieldError;
use super::text::quote;

/// Longest input looked at, in characters. Real numbers with an extension and generous
/// punctuation stay far below; beyond this the value is refused before any parsing.
const MAX_CHARS: usize = 64;
/// Fewest and most digits accepted (E.164 allows 15, plus up to 3 for a dialled prefix
/// such as `011`).
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 18;
/// Longest extension kept.
const MAX_EXT_DIGITS: usize = 10;

/// A valid number in E.164 form (`+14155550142`) and its extension, if one was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    e164: String,
    ext: Option<String>,
}

impl Phone {
    /// Parses a vendor's value. `region` is the ISO alpha-2 code used for numbers written
    /// without a country code; a value starting with `+` or `00` is international. An
    /// unknown region means only international numbers can be parsed.
    ///
    /// Extensions are recognised after `ext`, `ext.`, `extension`, `x`, `#` or
    /// RFC 3966's `;ext=`. Anything else that is not a digit or the usual punctuation
    /// (letters of a vanity number, a second number) makes the value invalid rather
    /// than being silently dropped.
    pub fn parse(raw: &str, region: &str) -> Result<Phone, FieldError> {
        let s = raw.trim();
        if s.chars().count() > MAX_CHARS {
            return Err(invalid(s, &format!("longer than {MAX_CHARS} characters")));
        }
        let s = ["tel:", "TEL:", "Tel:"].iter().find_map(|p| s.strip_prefix(p)).unwrap_or(s);

        let main_end = s.find(|c: char| !is_number_char(c)).unwrap_or(s.len());
        let (main, rest) = s.split_at(main_end);
        let ext = match parse_extension(rest) {
            Ok(ext) => ext,
            Err(why) => return Err(invalid(s, why)),
        };

        let main = main.trim();
        let international_plus = main.starts_with('+');
        if main.chars().skip(1).any(|c| c == '+') {
            return Err(invalid(s, "a `+` may only come first"));
        }
        let digits: String = main.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < MIN_DIGITS {
            return Err(invalid(s, "too few digits"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(invalid(s, "too many digits"));
        }

        let parsed = if international_plus {
            phonenumber::parse(None, format!("+{digits}"))
        } else if let Some(after_idd) = digits.strip_prefix("00") {
            phonenumber::parse(None, format!("+{after_idd}"))
        } else {
            match Id::from_str(&region.to_ascii_uppercase()) {
                Ok(id) => phonenumber::parse(Some(id), &digits),
                Err(_) => {
                    return Err(invalid(
                        s,
                        &format!("no country code, and `{region}` is not a known region"),
                    ));
                }
            }
        };
        let number = match parsed {
            Ok(n) => n,
            Err(e) => return Err(invalid(s, &e.to_string())),
        };
        if !number.is_valid() {
            let why = if international_plus || digits.starts_with("00") {
                "not a valid number for its country code".to_owned()
            } else {
                format!("not a valid number in region {region}")
            };
            return Err(invalid(s, &why));
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        Ok(Phone { e164, ext })
    }

    /// `+14155550142`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The extension's digits, if the value carried one.
    pub fn ext(&self) -> Option<&str> {
        self.ext.as_deref()
    }

    pub fn into_parts(self) -> (String, Option<String>) {
        (self.e164, self.ext)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)?;
        if let Some(ext) = &self.ext {
            write!(f, " ext. {ext}")?;
        }
        Ok(())
    }
}

fn invalid(value: &str, why: &str) -> FieldError {
    FieldError::invalid(format!("{} is not a valid phone number: {why}", quote(value)))
}

/// Characters of the number itself: digits and the punctuation people write around them.
fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | '/' | ' ' | '\u{a0}' | '\t')
}

/// Markers that introduce an extension, lower-case, longest first so `ext.` beats `ext`.
const EXT_MARKERS: &[&str] = &[";ext=", "extension", "ext.", "ext", "ex.", "x.", "x", "#"];

/// The extension digits in what follows the number (`ext. 7`, `x12`, `#3`, `;ext=44`).
fn parse_extension(rest: &str) -> Result<Option<String>, &'static str> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    let lower = rest.to_ascii_lowercase();
    let Some(marker) = EXT_MARKERS.iter().find(|m| lower.starts_with(**m)) else {
        return Err("unexpected text after the number");
    };
    let digits = lower
        .get(marker.len()..)
        .unwrap_or_default()
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '.' | '='))
        .trim_end();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("the extension is not a number");
    }
    if digits.len() > MAX_EXT_DIGITS {
        return Err("the extension is too long");
    }
    Ok(Some(digits.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, region: &str) -> (String, Option<String>) {
        match Phone::parse(raw, region) {
            Ok(p) => p.into_parts(),
            Err(e) => panic!("{raw:?} rejected: {e}"),
        }
    }

    fn err(raw: &str, region: &str) -> String {
        match Phone::parse(raw, region) {
            Ok(p) => panic!("{raw:?} accepted as {p}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn us_national_forms() {
        for raw in [
            "(415) 555-0142",
            "415-555-0142",
            "415.555.0142",
            "4155550142",
            "1-415-555-0142",
            "+1 415 555 0142",
            "001 415 555 0142",
            "tel:+1-415-555-0142",
        ] {
            assert_eq!(ok(raw, "US"), ("+14155550142".to_owned(), None), "{raw}");
        }
        assert_eq!(ok("512-555-0117", "US").0, "+15125550117");
        assert_eq!(ok("303.555.0163", "us").0, "+13035550163");
    }

    #[test]
    fn extensions() {
        assert_eq!(ok("415.555.0199 ext. 7", "US"), ("+14155550199".into(), Some("7".into())));
        assert_eq!(ok("415-555-0199 x123", "US").1.as_deref(), Some("123"));
        assert_eq!(ok("415-555-0199 Extension: 55", "US").1.as_deref(), Some("55"));
        assert_eq!(ok("415-555-0199#9", "US").1.as_deref(), Some("9"));
        assert_eq!(ok("tel:+1-415-555-0199;ext=44", "US").1.as_deref(), Some("44"));
        assert!(err("415-555-0199 ext. seven", "US").contains("extension"));
        assert!(err("415-555-0199 x12345678901", "US").contains("too long"));
    }

    #[test]
    fn international() {
        assert_eq!(ok("+44 7400 123456", "US").0, "+447400123456");
        assert_eq!(ok("0044 7400 123456", "US").0, "+447400123456");
        assert_eq!(ok("07400 123456", "GB").0, "+447400123456");
        assert_eq!(ok("011 44 7400 123456", "US").0, "+447400123456");
        assert_eq!(ok("030 1234567", "DE").0, "+49301234567");
    }

    #[test]
    fn invalid_numbers_say_why() {
        assert!(err("555-014", "US").contains("too few digits"));
        assert!(err("555-0142", "US").contains("not a valid number in region US"));
        // Ofcom's drama range: well-formed, but never assigned to anyone.
        assert!(err("+44 7700 900123", "US").contains("not a valid number for its country code"));
        assert!(err("(415) 555-014", "US").contains("not a valid number in region US"));
        assert!(err("1-800-FLOWERS", "US").contains("unexpected text"));
        assert!(err("415 555 0142 / 415 555 0143", "US").contains("too many digits"));
        assert!(err("4155550142", "ZZ").contains("not a known region"));
        assert!(err("+1 415 +555 0142", "US").contains("`+`"));
        assert!(err(&"4".repeat(100), "US").contains("longer than"));
    }

    #[test]
    fn messages_quote_the_value() {
        assert!(err("555-0142", "US").starts_with("`555-0142` is not a valid phone number"));
        assert!(err("  555-0142 ", "US").starts_with("`555-0142` "));
    }
}
