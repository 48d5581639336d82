//! Labelled lines (`Name: value`), their continuation lines, and composite values such
//! as "City, ST 12345": what templates and generic extraction both read.

use std::sync::LazyLock;

use regex::Regex;

/// A `label: value` line of a text, with the continuation lines joined in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub label: String,
    pub value: String,
    /// Index of the label's line.
    pub line: usize,
}

/// Longest label taken as one.
const MAX_LABEL_CHARS: usize = 40;
/// Most words in a label ("Preferred time to call" is four).
const MAX_LABEL_WORDS: usize = 6;

/// Every `label: value` line of `text`. A value continues on the following lines that are
/// indented (begin with white space); with `multiline`, also on the following non-blank
/// lines that are not labelled lines themselves. Continuations are joined with a space.
pub fn labelled_lines(text: &str, multiline: bool) -> Vec<Labelled> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let Some((label, value)) = split_label(line) else {
            i += 1;
            continue;
        };
        let mut value = value.to_owned();
        let start = i;
        i += 1;
        while let Some(next) = lines.get(i) {
            let indented = next.starts_with([' ', '\t']) && !next.trim().is_empty();
            let continues = indented || (multiline && !next.trim().is_empty() && split_label(next).is_none());
            if !continues {
                break;
            }
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(next.trim());
            i += 1;
        }
        out.push(Labelled { label: label.to_owned(), value, line: start });
    }
    out
}

/// `Label: value` → (label, value), if the line is one. A label starts with a letter,
/// is short, holds no `@` or URL, and is followed by `:` (or a tab, as tables render).
pub fn split_label(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    // An indented line is a continuation, not a label (up to 3 spaces of slack).
    if line.len() - trimmed.len() > 3 || line.starts_with('\t') {
        return None;
    }
    let sep = trimmed.find([':', '\t'])?;
    let label = trimmed.get(..sep)?.trim_end();
    let value = trimmed.get(sep + 1..)?.trim();
    let first = label.chars().next()?;
    let ok = first.is_alphabetic()
        && label.chars().count() <= MAX_LABEL_CHARS
        && label.split_whitespace().count() <= MAX_LABEL_WORDS
        && !label.contains('@')
        && !label.to_ascii_lowercase().ends_with("http")
        && !label.to_ascii_lowercase().ends_with("https");
    ok.then_some((label, value))
}

/// Whether `label` (as written in a mail) is `wanted` (as written in a template):
/// case-insensitive, trailing colons and surrounding white space ignored.
pub fn same_label(label: &str, wanted: &str) -> bool {
    let clean = |s: &str| s.trim().trim_end_matches(':').trim().to_lowercase();
    clean(label) == clean(wanted)
}

/// Text before the signature delimiter (`--` or `-- ` alone on a line), which is where
/// vendors put their footer: support numbers and addresses that are not the lead's.
pub fn before_signature(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare == "--" || bare == "-- " {
            return text.get(..offset).unwrap_or(text);
        }
        offset += line.len();
    }
    text
}

/// "Dallas, TX 75204", "Dallas TX 75204-1234", "Toronto, ON M5V 2T6" → (city, state,
/// postal code). `None` when the value is not in one of those shapes.
pub fn split_city_state_zip(value: &str) -> Option<(String, String, String)> {
    static WITH_COMMA: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(
            r"^\s*(?P<city>[^,]+?)\s*,\s*(?P<state>[A-Za-z]{2}|[A-Za-z][A-Za-z .]+?)\s*,?\s*(?P<zip>\d{5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d)\s*$",
        )
        .ok()
    });
    static NO_COMMA: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"^\s*(?P<city>.+?)\s+(?P<state>[A-Za-z]{2})\s+(?P<zip>\d{5}(?:-\d{4})?)\s*$").ok()
    });
    [&*WITH_COMMA, &*NO_COMMA].into_iter().flatten().find_map(|re| {
        let c = re.captures(value)?;
        Some((
            c.name("city")?.as_str().to_owned(),
            c.name("state")?.as_str().to_owned(),
            c.name("zip")?.as_str().to_owned(),
        ))
    })
}

/// Whether a labelled field's label names a city/state/ZIP composite.
pub fn is_city_state_zip_label(label: &str) -> bool {
    let key: String = label.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    matches!(
        key.as_str(),
        "citystatezip" | "citystatezipcode" | "citystatepostalcode" | "citystzip" | "location" | "citystate"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_join_and_labels_are_short() {
        let text = "Lead ID: 7\nComments: first\n second line\n\nNot a label because this is a sentence, really: no\n\
                    Email:a@b.example\nhttps://x.example/a:b\n";
        let got = labelled_lines(text, false);
        let pairs: Vec<(&str, &str)> = got.iter().map(|l| (l.label.as_str(), l.value.as_str())).collect();
        assert_eq!(pairs, [("Lead ID", "7"), ("Comments", "first second line"), ("Email", "a@b.example")]);
        let multi = labelled_lines("Message: one\ntwo\nName: x", true);
        assert_eq!(multi[0].value, "one two");
        assert_eq!(multi[1].value, "x");
    }

    #[test]
    fn composites_split() {
        assert_eq!(
            split_city_state_zip("Dallas, TX 75204"),
            Some(("Dallas".into(), "TX".into(), "75204".into()))
        );
        assert_eq!(
            split_city_state_zip("New York NY 10001-1234"),
            Some(("New York".into(), "NY".into(), "10001-1234".into()))
        );
        assert_eq!(
            split_city_state_zip("Toronto, ON M5V 2T6"),
            Some(("Toronto".into(), "ON".into(), "M5V 2T6".into()))
        );
        assert_eq!(split_city_state_zip("Dallas"), None);
        assert!(is_city_state_zip_label("City/State/Zip"));
    }

    #[test]
    fn the_signature_delimiter_ends_the_body() {
        assert_eq!(before_signature("a\r\nb\r\n--\r\nfooter"), "a\r\nb\r\n");
        assert_eq!(before_signature("a\n-- \nx"), "a\n");
        assert_eq!(before_signature("a\n---\nb"), "a\n---\nb");
    }
}
