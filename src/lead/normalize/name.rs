//! Person names: tidy spacing, fix shouting or all-lowercase, split full names.
//!
//! Names cannot be "invalid" (people are called all sorts of things), so these functions
//! never fail. Case is only touched when the vendor's value carries no case information
//! (all upper or all lower): `MCDONALD` → `Mcdonald` is a guess, but `McDonald` as sent is
//! kept, since only the person knows.

use super::text::single_line;

/// Trimmed, inner whitespace collapsed, title-cased if the value is all one case.
/// `None` when nothing is left.
pub fn tidy(raw: &str) -> Option<String> {
    let s = single_line(raw);
    if s.is_empty() {
        return None;
    }
    let has_lower = s.chars().any(char::is_lowercase);
    let has_upper = s.chars().any(char::is_uppercase);
    if has_lower != has_upper { Some(title_case(&s)) } else { Some(s) }
}

/// Upper-cases the first letter of each word and lower-cases the rest. Words start at the
/// beginning, after whitespace, `-` and `.`, and after an apostrophe that follows a single
/// letter (`o'neil` → `O'Neil`, `d'angelo` → `D'Angelo`, but `jane's` → `Jane's`).
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    // Letters since the start of the current word, to tell `O'` from `Jane'`.
    let mut letters_in_word = 0usize;
    for c in s.chars() {
        if c.is_alphabetic() {
            if at_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            at_start = false;
            letters_in_word += 1;
        } else {
            out.push(c);
            if c.is_whitespace() || c == '-' || c == '.' {
                at_start = true;
                letters_in_word = 0;
            } else if c == '\'' || c == '’' {
                at_start = letters_in_word == 1;
                letters_in_word = 0;
            }
        }
    }
    out
}

/// A full name split into (first, last), each tidied.
///
/// `Last, First` when there is a comma with text on both sides; otherwise the first word
/// is the first name and the rest is the last name (`Mary Ann van Dyke` → `Mary`,
/// `Ann van Dyke`: a guess, which is why a given first/last name always wins over it).
pub fn split_full(raw: &str) -> (Option<String>, Option<String>) {
    if let Some((last, first)) = raw.split_once(',') {
        let (first, last) = (tidy(first), tidy(last));
        if first.is_some() && last.is_some() {
            return (first, last);
        }
    }
    let s = single_line(&raw.replace(',', " "));
    match s.split_once(' ') {
        Some((first, rest)) => (tidy(first), tidy(rest)),
        None => (tidy(&s), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_title_cases_single_case_values() {
        assert_eq!(tidy("  maría josé ").as_deref(), Some("María José"));
        assert_eq!(tidy("o'neil-ruiz").as_deref(), Some("O'Neil-Ruiz"));
        assert_eq!(tidy("O'NEIL-RUIZ").as_deref(), Some("O'Neil-Ruiz"));
        assert_eq!(tidy("d’angelo").as_deref(), Some("D’Angelo"));
        assert_eq!(tidy("jane's").as_deref(), Some("Jane's"));
        assert_eq!(tidy("ÉMILIE   DU\tCHÂTELET").as_deref(), Some("Émilie Du Châtelet"));
        assert_eq!(tidy("j.r.r.").as_deref(), Some("J.R.R."));
    }

    #[test]
    fn tidy_keeps_mixed_case_and_uncased_scripts() {
        assert_eq!(tidy("McDonald").as_deref(), Some("McDonald"));
        assert_eq!(tidy("O'Neil-Ruiz").as_deref(), Some("O'Neil-Ruiz"));
        assert_eq!(tidy("van der Berg").as_deref(), Some("van der Berg"));
        assert_eq!(tidy("VAN DER BERG").as_deref(), Some("Van Der Berg"));
        assert_eq!(tidy("Ludwig van Beethoven").as_deref(), Some("Ludwig van Beethoven"));
        assert_eq!(tidy("李 小龙").as_deref(), Some("李 小龙"));
        assert_eq!(tidy(" \t ").as_deref(), None);
    }

    #[test]
    fn split_full_name() {
        assert_eq!(split_full("Sam Okafor"), (Some("Sam".into()), Some("Okafor".into())));
        assert_eq!(split_full("okafor, sam"), (Some("Sam".into()), Some("Okafor".into())));
        assert_eq!(split_full("  Mary Ann  van Dyke "), (Some("Mary".into()), Some("Ann van Dyke".into())));
        assert_eq!(split_full("Cher"), (Some("Cher".into()), None));
        assert_eq!(split_full("Cher,"), (Some("Cher".into()), None));
        assert_eq!(split_full(", Okafor"), (Some("Okafor".into()), None));
        assert_eq!(split_full(" , "), (None, None));
    }
}
