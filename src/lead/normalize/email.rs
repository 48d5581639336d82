//! E-mail addresses: parsed once into [`Email`], so later stages never re-check a string.

use std::fmt;

use email_address::{EmailAddress, Options};

use super::FieldError;
use super::text::quote;

/// Longest address accepted (RFC 5321 path limit). Also bounds the work on huge input.
const MAX_LEN: usize = 254;

/// A syntax-checked address with a lower-cased domain (and local part, by policy).
///
/// Beyond RFC 5322 syntax (checked by `email_address`, without display names such as
/// `Ann <ann@example.com>` or IP literals such as `ann@[192.0.2.1]`, which no lead form
/// produces on purpose) the domain must have a dot and end in a top-level domain of at
/// least two letters: `chloe@example` is syntactically fine but cannot receive mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses a vendor's value. Surrounding whitespace and a `mailto:` prefix are dropped.
    ///
    /// `lowercase_local`: lower-case the local part too. Strictly the local part is
    /// case-sensitive, but no mainstream provider treats it so, and lower-casing it makes
    /// `BEN.ACHEBE@…` and `ben.achebe@…` one person for dedupe.
    pub fn parse(raw: &str, lowercase_local: bool) -> Result<Email, FieldError> {
        let trimmed = raw.trim();
        let s = strip_prefix_ignore_case(trimmed, "mailto:").unwrap_or(trimmed).trim();
        if s.is_empty() {
            return Err(FieldError::invalid("the e-mail address is empty"));
        }
        if s.len() > MAX_LEN {
            return Err(FieldError::invalid(format!(
                "{} is not a valid e-mail address: longer than {MAX_LEN} bytes",
                quote(s)
            )));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(FieldError::invalid(format!(
                "{} is not a valid e-mail address: it has no `@`",
                quote(s)
            )));
        };
        if !domain.contains('.') {
            return Err(no_tld(s));
        }
        let local = if lowercase_local { local.to_lowercase() } else { local.to_owned() };
        let address = format!("{local}@{}", domain.to_lowercase());

        let options = Options::default().without_display_text().without_domain_literal().with_required_tld();
        if let Err(e) = EmailAddress::parse_with_options(&address, options) {
            return Err(FieldError::invalid(format!("{} is not a valid e-mail address: {e}", quote(s))));
        }
        let tld = address.rsplit('.').next().unwrap_or_default();
        if !is_tld(tld) {
            return Err(no_tld(s));
        }
        Ok(Email(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn no_tld(s: &str) -> FieldError {
    FieldError::invalid(format!(
        "{} is not a valid e-mail address: the domain has no top-level domain (like `.com`)",
        quote(s)
    ))
}

/// A top-level domain: two or more letters (any script, for IDN TLDs such as `рф`), or a
/// punycode label (`xn--p1ai`).
fn is_tld(label: &str) -> bool {
    let punycode = label.len() > 4 && label.starts_with("xn--");
    punycode || (label.chars().count() >= 2 && label.chars().all(char::is_alphabetic))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s.get(prefix.len()..)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match Email::parse(raw, true) {
            Ok(e) => e.into_string(),
            Err(e) => panic!("{raw:?} rejected: {e}"),
        }
    }

    fn err(raw: &str) -> String {
        match Email::parse(raw, true) {
            Ok(e) => panic!("{raw:?} accepted as {e}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lower_cases_and_trims() {
        assert_eq!(ok("MJ.ONeil@Example.COM "), "mj.oneil@example.com");
        assert_eq!(ok("BEN.ACHEBE@EXAMPLE.COM"), "ben.achebe@example.com");
        assert_eq!(ok(" mailto:ann@example.org"), "ann@example.org");
        assert_eq!(ok("o'brien+leads@mail.example.co.uk"), "o'brien+leads@mail.example.co.uk");
    }

    #[test]
    fn local_part_case_kept_by_policy() {
        let e = Email::parse("Ann.Lee@Example.COM", false).map(Email::into_string);
        assert_eq!(e.as_deref(), Ok("Ann.Lee@example.com"));
    }

    #[test]
    fn international_domains() {
        assert_eq!(ok("info@xn--80ak6aa92e.xn--p1ai"), "info@xn--80ak6aa92e.xn--p1ai");
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(err("chloe@example").contains("top-level domain"), "{}", err("chloe@example"));
        assert!(err("chloe@example.c").contains("top-level domain"));
        assert!(err("chloe@example.123").contains("not a valid"));
        assert!(err("chloe.example.com").contains("no `@`"));
        assert!(err("ann lee@example.com").contains("not a valid"));
        assert!(err("@example.com").contains("not a valid"));
        assert!(err("ann@").contains("not a valid"));
        assert!(err("Ann <ann@example.com>").contains("not a valid"));
        assert!(err("ann@[192.0.2.1]").contains("not a valid"));
        assert!(err("ann@example..com").contains("not a valid"));
        assert!(err(&format!("{}@example.com", "a".repeat(300))).contains("longer than"));
        assert!(err("  ").contains("empty"));
    }

    #[test]
    fn messages_quote_the_value() {
        assert!(err("chloe@example").contains("`chloe@example`"));
    }
}
