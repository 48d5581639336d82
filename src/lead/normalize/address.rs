//! Postal addresses: subdivision codes (US states, Canadian provinces) and postal codes.
//!
//! Only the schemes we can check are checked: US ZIP codes (an error when malformed,
//! because buyers route and price on them) and US/Canadian subdivision names (a warning
//! when unknown, because a misspelt state still describes a real lead). Everything else
//! is tidied and kept as sent.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value;

use super::FieldError;
use super::aliases::key;
use super::text::{quote, single_line};

/// Countries and territories that use USPS ZIP codes and state codes.
pub const USPS_COUNTRIES: &[&str] = &["US", "PR", "GU", "VI", "AS", "MP", "UM", "FM", "MH", "PW"];

/// Whether an ISO alpha-2 country uses USPS ZIP codes and state codes.
pub fn uses_usps(country: &str) -> bool {
    USPS_COUNTRIES.iter().any(|c| c.eq_ignore_ascii_case(country))
}

/// USPS codes: the 50 states, DC, the territories, the freely associated states and the
/// Armed Forces "states".
const US_CODES: &[(&str, &str)] = &[
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("DC", "District of Columbia"),
    ("PR", "Puerto Rico"),
    ("GU", "Guam"),
    ("VI", "U.S. Virgin Islands"),
    ("AS", "American Samoa"),
    ("MP", "Northern Mariana Islands"),
    ("FM", "Federated States of Micronesia"),
    ("MH", "Marshall Islands"),
    ("PW", "Palau"),
    ("AA", "Armed Forces Americas"),
    ("AE", "Armed Forces Europe"),
    ("AP", "Armed Forces Pacific"),
];

/// Other US spellings: AP-style abbreviations and common variants.
const US_SYNONYMS: &[(&str, &str)] = &[
    ("Ala.", "AL"),
    ("Ariz.", "AZ"),
    ("Ark.", "AR"),
    ("Calif.", "CA"),
    ("Cal.", "CA"),
    ("Colo.", "CO"),
    ("Conn.", "CT"),
    ("Del.", "DE"),
    ("Fla.", "FL"),
    ("Ill.", "IL"),
    ("Ind.", "IN"),
    ("Kan.", "KS"),
    ("Kans.", "KS"),
    ("Mass.", "MA"),
    ("Mich.", "MI"),
    ("Minn.", "MN"),
    ("Miss.", "MS"),
    ("Mont.", "MT"),
    ("Neb.", "NE"),
    ("Nebr.", "NE"),
    ("Nev.", "NV"),
    ("Okla.", "OK"),
    ("Ore.", "OR"),
    ("Tenn.", "TN"),
    ("Tex.", "TX"),
    ("Wash.", "WA"),
    ("W.Va.", "WV"),
    ("Wis.", "WI"),
    ("Wisc.", "WI"),
    ("Wyo.", "WY"),
    ("Washington DC", "DC"),
    ("Washington, D.C.", "DC"),
    ("Virgin Islands", "VI"),
    ("US Virgin Islands", "VI"),
    ("United States Virgin Islands", "VI"),
    ("Northern Marianas", "MP"),
    ("Micronesia", "FM"),
];

/// Canadian provinces and territories (Canada Post codes), with French names and the old
/// `PQ`/`NF` codes.
const CA_CODES: &[(&str, &str)] = &[
    ("AB", "Alberta"),
    ("BC", "British Columbia"),
    ("MB", "Manitoba"),
    ("NB", "New Brunswick"),
    ("NL", "Newfoundland and Labrador"),
    ("NS", "Nova Scotia"),
    ("NT", "Northwest Territories"),
    ("NU", "Nunavut"),
    ("ON", "Ontario"),
    ("PE", "Prince Edward Island"),
    ("QC", "Quebec"),
    ("SK", "Saskatchewan"),
    ("YT", "Yukon"),
];

const CA_SYNONYMS: &[(&str, &str)] = &[
    ("Québec", "QC"),
    ("PQ", "QC"),
    ("Newfoundland", "NL"),
    ("NF", "NL"),
    ("Labrador", "NL"),
    ("Terre-Neuve-et-Labrador", "NL"),
    ("Yukon Territory", "YT"),
    ("PEI", "PE"),
    ("Île-du-Prince-Édouard", "PE"),
    ("Colombie-Britannique", "BC"),
    ("Nouveau-Brunswick", "NB"),
    ("Nouvelle-Écosse", "NS"),
    ("Territoires du Nord-Ouest", "NT"),
];

/// A subdivision table keyed by [`key`]: codes, names and synonyms.
fn table(codes: &[(&'static str, &str)], synonyms: &[(&str, &'static str)]) -> HashMap<String, &'static str> {
    let mut map = HashMap::new();
    for (code, name) in codes {
        map.insert(key(code), *code);
        map.insert(key(name), *code);
    }
    for (name, code) in synonyms {
        map.insert(key(name), *code);
    }
    map
}

static US: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| table(US_CODES, US_SYNONYMS));
static CA: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| table(CA_CODES, CA_SYNONYMS));

/// USPS code for a US state or territory name or code, case- and punctuation-insensitive
/// (`California`, `calif.`, `N.Y.`, `tx`).
pub fn us_state(raw: &str) -> Option<&'static str> {
    US.get(&key(raw)).copied()
}

/// Canada Post code for a province or territory name or code (`Ontario`, `Québec`, `bc`).
pub fn ca_province(raw: &str) -> Option<&'static str> {
    CA.get(&key(raw)).copied()
}

/// Which subdivision tables apply to a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateScheme {
    /// The country uses USPS codes.
    Us,
    /// Canada.
    Ca,
    /// No country given and the source's region is US or CA: either table, that one first.
    Guess { us_first: bool },
    /// Another or an unknown country: no table, the value is tidied and kept.
    Other,
}

/// A state value in its canonical form, plus a warning when a table applied but did not
/// know the value. Unknown values are kept trimmed (upper-cased when two letters, since
/// that is how codes are written).
pub fn normalize_state(raw: &str, scheme: StateScheme) -> (String, Option<FieldError>) {
    let found = match scheme {
        StateScheme::Us => us_state(raw),
        StateScheme::Ca => ca_province(raw),
        StateScheme::Guess { us_first: true } => us_state(raw).or_else(|| ca_province(raw)),
        StateScheme::Guess { us_first: false } => ca_province(raw).or_else(|| us_state(raw)),
        StateScheme::Other => None,
    };
    if let Some(code) = found {
        return (code.to_owned(), None);
    }
    let tidy = single_line(raw);
    let kept = if tidy.chars().count() == 2 && tidy.chars().all(char::is_alphabetic) {
        tidy.to_uppercase()
    } else {
        tidy
    };
    let warning = match scheme {
        StateScheme::Other => None,
        StateScheme::Us => Some("a US state or territory"),
        StateScheme::Ca => Some("a Canadian province or territory"),
        StateScheme::Guess { .. } => Some("a US state or Canadian province"),
    }
    .map(|what| FieldError::invalid(format!("{} is not {what}; kept as sent", quote(&kept))));
    (kept, warning)
}

/// A US ZIP code: `12345` or `12345-6789`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsZip(String);

impl UsZip {
    /// Parses `12345`, `12345-6789` or `123456789` (→ `12345-6789`).
    ///
    /// A JSON number lost its leading zeros in a spreadsheet on the way (`02134` became
    /// `2134`), so numbers are left-padded: to 5 digits up to 5 digits, to 9 (ZIP+4) for
    /// 6 to 9 digits. Strings are never padded: `8020` typed by a person is a typo, not a
    /// Boston ZIP.
    pub fn parse(value: &Value) -> Result<UsZip, FieldError> {
        match value {
            Value::Number(n) => {
                let s = n.to_string();
                match n.as_u64() {
                    Some(_) if s.len() <= 5 => Ok(UsZip(format!("{s:0>5}"))),
                    Some(_) if s.len() <= 9 => Self::parse_str(&format!("{s:0>9}")),
                    _ => Err(Self::invalid(&s)),
                }
            }
            Value::String(s) => Self::parse_str(s),
            other => Err(Self::invalid(&other.to_string())),
        }
    }

    /// Parses the text forms; see [`UsZip::parse`].
    pub fn parse_str(raw: &str) -> Result<UsZip, FieldError> {
        let s = raw.trim();
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        let zip = match (s.len(), s.split_once('-')) {
            (5, None) if all_digits(s) => s.to_owned(),
            (9, None) if all_digits(s) => format!("{}-{}", &s[..5], &s[5..]),
            (10, Some((five, four))) if five.len() == 5 && all_digits(five) && all_digits(four) => {
                s.to_owned()
            }
            _ => return Err(Self::invalid(s)),
        };
        Ok(UsZip(zip))
    }

    fn invalid(s: &str) -> FieldError {
        FieldError::invalid(format!("{} is not a US ZIP code (expected 12345 or 12345-6789)", quote(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A non-US postal code: trimmed, inner whitespace collapsed, upper-cased (`sw1a 1aa` →
/// `SW1A 1AA`). Not checked: we have no table for the world's formats.
pub fn foreign_postal_code(raw: &str) -> String {
    single_line(raw).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn us_states_by_name_code_and_abbreviation() {
        assert_eq!(us_state("California"), Some("CA"));
        assert_eq!(us_state("  CALIFORNIA "), Some("CA"));
        assert_eq!(us_state("tx"), Some("TX"));
        assert_eq!(us_state("Colorado"), Some("CO"));
        assert_eq!(us_state("new york"), Some("NY"));
        assert_eq!(us_state("N.Y."), Some("NY"));
        assert_eq!(us_state("Calif."), Some("CA"));
        assert_eq!(us_state("District of Columbia"), Some("DC"));
        assert_eq!(us_state("Washington, D.C."), Some("DC"));
        assert_eq!(us_state("Washington"), Some("WA"));
        assert_eq!(us_state("puerto rico"), Some("PR"));
        assert_eq!(us_state("U.S. Virgin Islands"), Some("VI"));
        assert_eq!(us_state("Ontario"), None);
        assert_eq!(us_state("Calif"), Some("CA"));
    }

    #[test]
    fn us_table_is_complete() {
        let states = US_CODES.iter().take_while(|(c, _)| *c != "DC").count();
        assert_eq!(states, 50);
        for (code, name) in US_CODES {
            assert_eq!(us_state(name), Some(*code), "{name}");
            assert_eq!(us_state(&code.to_lowercase()), Some(*code));
        }
        for (name, code) in US_SYNONYMS {
            assert_eq!(us_state(name), Some(*code), "{name}");
        }
    }

    #[test]
    fn canadian_provinces() {
        assert_eq!(ca_province("Ontario"), Some("ON"));
        assert_eq!(ca_province("québec"), Some("QC"));
        assert_eq!(ca_province("Quebec"), Some("QC"));
        assert_eq!(ca_province("bc"), Some("BC"));
        assert_eq!(ca_province("Prince Edward Island"), Some("PE"));
        assert_eq!(ca_province("California"), None);
        for (code, name) in CA_CODES {
            assert_eq!(ca_province(name), Some(*code), "{name}");
        }
    }

    #[test]
    fn state_schemes() {
        assert_eq!(normalize_state("California", StateScheme::Us), ("CA".into(), None));
        assert_eq!(normalize_state("Ontario", StateScheme::Ca), ("ON".into(), None));
        assert_eq!(normalize_state("Ontario", StateScheme::Guess { us_first: true }), ("ON".into(), None));
        let (kept, warning) = normalize_state(" zz ", StateScheme::Us);
        assert_eq!(kept, "ZZ");
        assert!(warning.is_some_and(|w| w.to_string().contains("`ZZ` is not a US state")));
        let (kept, warning) = normalize_state("  Greater  London ", StateScheme::Other);
        assert_eq!((kept.as_str(), warning), ("Greater London", None));
        let (kept, warning) = normalize_state("Ontario", StateScheme::Us);
        assert_eq!(kept, "Ontario");
        assert!(warning.is_some());
    }

    #[test]
    fn zip_codes() {
        let zip = |v: Value| UsZip::parse(&v).map(UsZip::into_string);
        assert_eq!(zip(json!("94102-4801")).as_deref(), Ok("94102-4801"));
        assert_eq!(zip(json!(" 78701 ")).as_deref(), Ok("78701"));
        assert_eq!(zip(json!("941024801")).as_deref(), Ok("94102-4801"));
        assert_eq!(zip(json!("02134")).as_deref(), Ok("02134"));
        assert_eq!(zip(json!(2134)).as_deref(), Ok("02134"));
        assert_eq!(zip(json!(80202)).as_deref(), Ok("80202"));
        assert_eq!(zip(json!(21341234)).as_deref(), Ok("02134-1234"));
        assert_eq!(zip(json!(941024801)).as_deref(), Ok("94102-4801"));
        for bad in [
            json!("8020"),
            json!("802021"),
            json!("94102-480"),
            json!("94102 4801"),
            json!("9410a"),
            json!("٩٤١٠٢"),
            json!("SW1A 1AA"),
            json!(-80202),
            json!(802.02),
            json!(1234567890),
            json!(true),
        ] {
            let e = zip(bad.clone());
            assert!(e.as_ref().is_err_and(|e| e.to_string().contains("not a US ZIP code")), "{bad}: {e:?}");
        }
    }

    #[test]
    fn foreign_postal_codes() {
        assert_eq!(foreign_postal_code(" sw1a   1aa "), "SW1A 1AA");
        assert_eq!(foreign_postal_code("k1a 0b1"), "K1A 0B1");
    }
}
