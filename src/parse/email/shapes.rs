//! The shapes of contact values: e-mail addresses, phone numbers and personal names found
//! in a value or in prose, and the addresses that belong to the platform rather than the
//! lead.
//!
//! Every pattern here is a `regex` crate pattern: matching is linear in the input (no
//! backtracking), so a hostile message costs at most a pass over each line.

use std::sync::LazyLock;

use regex::Regex;

fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static EMAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?i)[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z]{2,24}"));

/// North American numbers written the usual ways, and `+` international ones.
static PHONE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(
        r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}|\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}|\b\d{10}\b",
    )
});

/// Every e-mail address in `text`, lower-cased, in order.
pub fn emails(text: &str) -> Vec<String> {
    let Some(re) = &*EMAIL else { return Vec::new() };
    re.find_iter(text).map(|m| m.as_str().trim_end_matches('.').to_ascii_lowercase()).collect()
}

/// The one e-mail address `value` is (white space and a `mailto:` or angle brackets
/// around it allowed), if it is one.
pub fn as_email(value: &str) -> Option<String> {
    let found = emails(value);
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Phone numbers in `text` (as written), in order. A number glued to other digits or
/// letters (an id, a price, a date) is not one.
pub fn phones(text: &str) -> Vec<String> {
    let Some(re) = &*PHONE else { return Vec::new() };
    let bytes = text.as_bytes();
    re.find_iter(text)
        .filter(|m| {
            let before = m.start().checked_sub(1).and_then(|i| bytes.get(i)).copied();
            let after = bytes.get(m.end()).copied();
            let glued = |b: Option<u8>| {
                b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'$' || b == b'#')
            };
            let n = digits(m.as_str());
            !glued(before) && !glued(after) && (10..=15).contains(&n)
        })
        .map(|m| m.as_str().trim().to_owned())
        .collect()
}

/// Words that, just before a number, make it an id rather than a phone.
const ID_CUES: &[&str] = &[
    "#",
    "id",
    "ref",
    "mls",
    "no.",
    "no",
    "order",
    "invoice",
    "ticket",
    "case",
    "listing",
    "lot",
    "vin",
    "account",
    "confirmation",
];

/// Words that, on the same line, say a number in prose is the writer's phone.
const PHONE_CUES: &[&str] = &[
    "call",
    "phone",
    "number",
    "cell",
    "mobile",
    "reach",
    "text",
    "tel",
    "contact",
    "me",
    "my",
    "whatsapp",
    "sms",
    "ring",
    "dial",
    "nummer",
    "teléfono",
    "telefono",
    "téléphone",
    "celular",
    "móvil",
];

/// Phone numbers in prose: as [`phones`], but only with separators (a bare run of ten
/// digits is an id as often as a phone), not right after an id word (`MLS# …`, `Listing
/// ID …`), and only on a line that speaks of calling or of the writer ("call me at …",
/// "my number is …"): a number alone in a vendor's address block is the vendor's.
pub fn prose_phones(line: &str) -> Vec<String> {
    let lower = line.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let abbreviated = ["p.", "p:", "ph.", "ph:", "t.", "t:", "m.", "m:", "c.", "c:"]
        .iter()
        .any(|a| lower.trim_start().starts_with(a));
    if !abbreviated && !PHONE_CUES.iter().any(|c| words.contains(c)) {
        return Vec::new();
    }
    phones(line)
        .into_iter()
        .filter(|p| p.starts_with('+') || p.chars().any(|c| !c.is_ascii_digit()))
        .filter(|p| {
            let at = line.find(p.as_str()).unwrap_or(0);
            let before = line.get(..at).unwrap_or("").trim_end().to_lowercase();
            !ID_CUES.iter().any(|cue| {
                before.ends_with(cue)
                    && (cue.len() == 1
                        || before.len() == cue.len()
                        || !before
                            .as_bytes()
                            .get(before.len() - cue.len() - 1)
                            .is_some_and(|b| b.is_ascii_alphanumeric()))
            })
        })
        .collect()
}

/// The phone number `value` is, if it is one: mostly phone characters, 7 to 15 digits.
/// An extension or a note in parentheses may follow ("(512) 555-0142 ext. 7", "… (cell)").
pub fn as_phone(value: &str) -> Option<String> {
    let v = value.trim();
    if v.contains('@') {
        return None;
    }
    if let Some(p) = phones(v).into_iter().next() {
        return Some(p);
    }
    let n = digits(v);
    let phoneish = v.chars().all(|c| c.is_ascii_digit() || " +-.()/".contains(c));
    (phoneish && (7..=15).contains(&n)).then(|| v.to_owned())
}

/// Toll-free numbers (800, 888 …): a vendor's line, almost never a lead's.
pub fn is_toll_free(number: &str) -> bool {
    let d: String = number.chars().filter(char::is_ascii_digit).collect();
    let national = d.strip_prefix('1').filter(|_| d.len() == 11).unwrap_or(&d);
    ["800", "888", "877", "866", "855", "844", "833"].iter().any(|p| national.starts_with(p))
}

pub fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

/// A personal name as written in a value: one to five words, mostly letters, no address
/// or number in it.
pub fn as_name(value: &str) -> Option<String> {
    let v = value.trim().trim_matches(|c: char| c == '"' || c == '\'' || c == ',').trim();
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.is_empty() || words.len() > 5 || v.chars().count() > 60 || v.contains('@') || v.contains("://") {
        return None;
    }
    let letters = v.chars().filter(|c| c.is_alphabetic()).count();
    let others = v.chars().filter(|c| !(c.is_alphabetic() || " .'’-,".contains(*c))).count();
    let generic = ["n/a", "none", "unknown", "not provided", "anonymous", "someone", "a user", "customer"];
    (letters >= 2 && others == 0 && !generic.contains(&v.to_lowercase().as_str())).then(|| words.join(" "))
}

/// Name-like words capitalised as names are ("Rhea", "María-José O'Neil").
const NAME: &str = r"\p{Lu}[\p{L}'’-]*\.?(?:[ \t]+\p{Lu}[\p{L}'’-]*\.?){0,3}";

static SENTENCE_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(&format!(
        r"^(?:(?:Good news|Great news|Hi|Hello|Hey)[,!:]?\s+(?:\p{{L}}+[,!]\s+)?)?(?P<name>{NAME})\s+(?:has sent you|sent you|just sent you|has a question|is interested|wants|would like|has requested|requested|asked|has asked|left you|has left|replied|has replied|contacted you|has contacted|reached out|submitted|has submitted|is looking|messaged you|wrote)\b"
    ))
});

static SUBJECT_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(&format!(
        r"(?i:(?:new\s+)?(?:message|inquiry|enquiry|lead|request|question|reply|contact|response|quote request|booking request|note)s?\s+from)\s+(?P<name>{NAME})"
    ))
});

/// Words that start a capitalised phrase but are no name.
const NOT_NAMES: &[&str] = &[
    "you", "new", "a", "an", "the", "someone", "somebody", "this", "your", "our", "we", "it", "they",
    "there", "renter", "buyer", "customer", "lead", "user", "client", "guest", "visitor", "prospect",
    "message",
];

/// The person a sentence of prose names as the one writing: "Rhea has sent you a
/// message", "Good news! Omar Haddad is interested in …".
pub fn name_in_sentence(line: &str) -> Option<String> {
    let re = SENTENCE_NAME.as_ref()?;
    let caps = re.captures(line.trim())?;
    clean_name(caps.name("name")?.as_str())
}

static INTRODUCTION: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(&format!(r"(?i:\bmy name is|\bmy name's|^this is)\s+(?P<name>{NAME})")));

/// The person who introduces themselves: "Hello, my name is Sara Ibrahim and …".
pub fn name_in_introduction(line: &str) -> Option<String> {
    let re = INTRODUCTION.as_ref()?;
    let caps = re.captures(line.trim())?;
    let raw = caps.name("name")?.as_str();
    // "Sara Ibrahim And" never: the pattern only takes capitalised words; drop "I".
    clean_name(raw.split_whitespace().take_while(|w| *w != "I").collect::<Vec<_>>().join(" ").as_str())
}

/// The person a subject names: "New message from Rhea Patel", "Inquiry from Omar about …".
pub fn name_in_subject(subject: &str) -> Option<String> {
    let re = SUBJECT_NAME.as_ref()?;
    let caps = re.captures(subject)?;
    clean_name(caps.name("name")?.as_str())
}

fn clean_name(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().map(|w| w.trim_end_matches('.')).collect();
    let first = words.first()?.to_lowercase();
    if NOT_NAMES.contains(&first.as_str()) {
        return None;
    }
    // "Omar About" from "Omar About the house": stop at a capitalised function word.
    let stop = ["About", "Regarding", "For", "On", "Re", "At", "In", "Via", "Is", "Has"];
    let kept: Vec<&str> = words.iter().copied().take_while(|w| !stop.contains(w)).collect();
    as_name(&kept.join(" "))
}

/// `Name <addr>`, `Name [mailto:addr]`, `Name <mailto:addr>`, `addr (Name)`: the name
/// beside an address, if the text is one of those shapes.
pub fn name_beside_address(text: &str, address: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let at = lower.find(address)?;
    let before = text.get(..at)?;
    let before =
        before.trim_end().trim_end_matches("mailto:").trim_end().trim_end_matches(['<', '[', '(']).trim_end();
    let before = before.trim_start_matches("From").trim_start_matches(':').trim();
    as_name(before.trim_end_matches([',', '-', '–', '|']).trim())
}

/// Local parts that a platform, not a person, sends or receives with.
const ROLE_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "info",
    "support",
    "help",
    "privacy",
    "unsubscribe",
    "notifications",
    "notification",
    "notify",
    "alerts",
    "alert",
    "mailer",
    "mailer-daemon",
    "postmaster",
    "bounce",
    "bounces",
    "admin",
    "webmaster",
    "leads",
    "lead",
    "inquiries",
    "inquiry",
    "enquiries",
    "team",
    "hello",
    "news",
    "newsletter",
    "marketing",
    "sales",
    "service",
    "system",
    "robot",
    "auto",
    "automated",
    "reply",
    "replies",
    "messages",
    "messaging",
    "contact",
    "feedback",
    "abuse",
    "security",
    "billing",
    "accounts",
    "office",
    "listings",
    "agents",
    "dealer",
    "jobs",
    "careers",
];

/// Whether an address is a platform's role address (noreply@, info@, leads@ …) or a
/// per-message relay (`r-8f3k2a9d@reply.vendor.example`).
pub fn is_platform_address(addr: &str) -> bool {
    let addr = addr.to_ascii_lowercase();
    let Some((local, domain)) = addr.rsplit_once('@') else { return true };
    let base = local.split('+').next().unwrap_or(local);
    if ROLE_LOCAL_PARTS.contains(&base) || base.starts_with("noreply") || base.starts_with("no-reply") {
        return true;
    }
    if ["reply.", "relay.", "replies.", "messaging.", "notify.", "bounce."]
        .iter()
        .any(|p| domain.starts_with(p))
        || domain.contains("relay")
    {
        return true;
    }
    is_relay_token(base)
}

/// A local part made of a machine token (`relay-8f3k2`, `a81f0c3e9b`, `lead.5512093`):
/// letters and digits interleaved, or a long run of digits. A person's `jlee1984` is not.
fn is_relay_token(local: &str) -> bool {
    local.starts_with("relay")
        || local.starts_with("reply")
        || local.split(['-', '_', '.']).any(|piece| {
            let d = piece.chars().filter(char::is_ascii_digit).count();
            let switches = piece
                .as_bytes()
                .windows(2)
                .filter(|w| matches!(w, [a, b] if a.is_ascii_digit() != b.is_ascii_digit()))
                .count();
            (switches >= 3 && d >= 2) || (d >= 6 && d == piece.len())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(emails("write to Ana.Ruiz@Mail.example, thanks."), ["ana.ruiz@mail.example"]);
        assert_eq!(
            phones("call (512) 555-0142 or +44 20 7946 0958; order #5125550142x"),
            ["(512) 555-0142", "+44 20 7946 0958"]
        );
        assert!(phones("ref 2026-10-05 total $1,250.00 zip 78701").is_empty());
        assert!(prose_phones("Buyer inquiry for MLS# 2026551234, call me").is_empty());
        assert!(prose_phones("512-555-0100").is_empty());
        assert_eq!(prose_phones("Text me at 651-555-0147 please"), ["651-555-0147"]);
        assert_eq!(as_phone("512.555.0142 (cell)").as_deref(), Some("512.555.0142"));
        assert_eq!(as_phone("3 bedrooms"), None);
        assert!(is_toll_free("1-800-555-0100"));
        assert!(!is_toll_free("512-555-0100"));
        assert_eq!(as_name("Ana  Ruiz").as_deref(), Some("Ana Ruiz"));
        assert_eq!(as_name("ana@x.example"), None);
        assert_eq!(name_in_sentence("Rhea has sent you a message about 12 Oak St.").as_deref(), Some("Rhea"));
        assert_eq!(
            name_in_sentence("Good news! Omar Haddad is interested in your car").as_deref(),
            Some("Omar Haddad")
        );
        assert_eq!(name_in_sentence("You have a new message"), None);
        assert_eq!(
            name_in_introduction("Hello, my name is Sara Ibrahim and I need help").as_deref(),
            Some("Sara Ibrahim")
        );
        assert_eq!(
            name_in_subject("New message from Rhea Patel about 12 Oak St").as_deref(),
            Some("Rhea Patel")
        );
        assert_eq!(
            name_beside_address("From Ana Ruiz [mailto:ana@x.example]", "ana@x.example").as_deref(),
            Some("Ana Ruiz")
        );
        assert_eq!(
            name_beside_address("Ana Ruiz <mailto:ana@x.example>", "ana@x.example").as_deref(),
            Some("Ana Ruiz")
        );
        assert!(is_platform_address("noreply@vendor.example"));
        assert!(is_platform_address("relay-8f3k2@reply.rentfinder.example"));
        assert!(is_platform_address("info@agency.example"));
        assert!(!is_platform_address("ana.ruiz@mail.example"));
        assert!(!is_platform_address("jlee1984@mail.example"));
    }
}
