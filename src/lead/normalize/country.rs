//! Countries: names, alpha-2, alpha-3 and everyday synonyms → ISO 3166-1 alpha-2.
//!
//! Names come from `isocountry` (ISO English short names, so also `Bolivia` from
//! `Bolivia (Plurinational State of)` when that short form is unambiguous), plus the
//! spellings people type (`USA`, `U.S.`, `America`, `UK`, `England`, `Holland` …).
//! Matching ignores case and everything but letters and digits, as aliases do.

use std::collections::HashMap;
use std::sync::LazyLock;

use isocountry::CountryCode;

use super::aliases::key;

/// Everyday names that are not ISO names. `England`, `Scotland` & co. map to `GB`: the
/// gateway keeps countries, not the UK's constituent nations.
const SYNONYMS: &[(&str, &str)] = &[
    ("USA", "US"),
    ("U.S.", "US"),
    ("U.S.A.", "US"),
    ("United States", "US"),
    ("United States of America", "US"),
    ("America", "US"),
    ("UK", "GB"),
    ("U.K.", "GB"),
    ("United Kingdom", "GB"),
    ("Great Britain", "GB"),
    ("Britain", "GB"),
    ("England", "GB"),
    ("Scotland", "GB"),
    ("Wales", "GB"),
    ("Northern Ireland", "GB"),
    ("Holland", "NL"),
    ("The Netherlands", "NL"),
    ("Deutschland", "DE"),
    ("España", "ES"),
    ("Espana", "ES"),
    ("Brasil", "BR"),
    ("México", "MX"),
    ("Russia", "RU"),
    ("South Korea", "KR"),
    ("Korea", "KR"),
    ("Republic of Korea", "KR"),
    ("North Korea", "KP"),
    ("Vietnam", "VN"),
    ("Laos", "LA"),
    ("Syria", "SY"),
    ("Iran", "IR"),
    ("Taiwan", "TW"),
    ("Czech Republic", "CZ"),
    ("Ivory Coast", "CI"),
    ("Cote d'Ivoire", "CI"),
    ("Cape Verde", "CV"),
    ("Vatican", "VA"),
    ("Vatican City", "VA"),
    ("Macedonia", "MK"),
    ("North Macedonia", "MK"),
    ("Turkiye", "TR"),
    ("Türkiye", "TR"),
    ("Swaziland", "SZ"),
    ("Burma", "MM"),
    ("Brunei", "BN"),
    ("UAE", "AE"),
    ("U.A.E.", "AE"),
    ("DR Congo", "CD"),
    ("DRC", "CD"),
    ("Democratic Republic of the Congo", "CD"),
    ("Republic of the Congo", "CG"),
    ("Palestine", "PS"),
    ("US Virgin Islands", "VI"),
    ("British Virgin Islands", "VG"),
];

/// Key → alpha-2 for names and synonyms (codes are looked up directly).
static NAMES: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let mut map: HashMap<String, &'static str> = HashMap::new();
    // Short forms (`Bolivia` of `Bolivia (Plurinational State of)`, `Tanzania` of
    // `Tanzania, United Republic of`), only when one country claims them.
    let mut short: HashMap<String, Vec<&'static str>> = HashMap::new();
    for c in CountryCode::iter() {
        map.insert(key(c.name()), c.alpha2());
        let base = c.name().split([',', '(']).next().unwrap_or_default();
        short.entry(key(base)).or_default().push(c.alpha2());
    }
    for (k, codes) in short {
        if let [only] = codes[..] {
            map.entry(k).or_insert(only);
        }
    }
    for (name, code) in SYNONYMS {
        if let Ok(c) = CountryCode::for_alpha2(code) {
            map.insert(key(name), c.alpha2());
        }
    }
    map
});

/// ISO 3166-1 alpha-2 for a country name, code or synonym; `None` when unknown.
pub fn alpha2(raw: &str) -> Option<&'static str> {
    let k = key(raw);
    if let Some(code) = NAMES.get(&k) {
        return Some(code);
    }
    match k.len() {
        2 => CountryCode::for_alpha2_caseless(&k).ok().map(|c| c.alpha2()),
        3 => CountryCode::for_alpha3_caseless(&k).ok().map(|c| c.alpha2()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_spellings() {
        for s in ["US", "us", "USA", "U.S.", "U.S.A.", "United States", "united states of america", "America"]
        {
            assert_eq!(alpha2(s), Some("US"), "{s}");
        }
    }

    #[test]
    fn uk_spellings() {
        for s in ["UK", "GB", "GBR", "Great Britain", "England", "United Kingdom", "Scotland"] {
            assert_eq!(alpha2(s), Some("GB"), "{s}");
        }
    }

    #[test]
    fn codes_and_iso_names() {
        assert_eq!(alpha2("ca"), Some("CA"));
        assert_eq!(alpha2("CAN"), Some("CA"));
        assert_eq!(alpha2("Canada"), Some("CA"));
        assert_eq!(alpha2("deu"), Some("DE"));
        assert_eq!(alpha2("Germany"), Some("DE"));
        assert_eq!(alpha2("Côte d'Ivoire"), Some("CI"));
        assert_eq!(alpha2("Bolivia"), Some("BO"));
        assert_eq!(alpha2("Tanzania"), Some("TZ"));
        assert_eq!(alpha2("Viet Nam"), Some("VN"));
        assert_eq!(alpha2("Korea"), Some("KR"));
        assert_eq!(alpha2("Congo"), Some("CG"));
        assert_eq!(alpha2("Russian Federation"), Some("RU"));
        for c in CountryCode::iter() {
            assert_eq!(alpha2(c.name()), Some(c.alpha2()), "{}", c.name());
            assert_eq!(alpha2(c.alpha2()), Some(c.alpha2()));
            assert_eq!(alpha2(c.alpha3()), Some(c.alpha2()));
        }
    }

    #[test]
    fn unknown() {
        assert_eq!(alpha2("Atlantis"), None);
        assert_eq!(alpha2("XX"), None);
        assert_eq!(alpha2(""), None);
        assert_eq!(alpha2("Virgin Islands"), None);
    }
}
