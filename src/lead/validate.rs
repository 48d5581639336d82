//! Validation: per-source required fields and simple rules, every failure named.
//!
//! A rule is a field name (`"last_name"`) or alternatives (`"email or phone"`): at least
//! one of them must be present *and usable* — a phone kept raw because it is not a valid
//! number does not satisfy `phone`.

use super::{Lead, Problem};

/// One requirement of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Alternatives: at least one must be present.
    any_of: Vec<String>,
}

/// The compiled `validate` section of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    required: Vec<Requirement>,
}

impl Rules {
    /// Compiles `required = [...]` entries; `known` says whether a field name exists.
    pub fn parse(entries: &[String]) -> Result<Rules, String> {
        let mut required = Vec::new();
        for entry in entries {
            let any_of: Vec<String> =
                entry.split(" or ").map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
            if any_of.is_empty() {
                return Err(format!("empty rule {entry:?}"));
            }
            for f in &any_of {
                if !is_field_name(f) {
                    return Err(format!(
                        "unknown field {f:?} in rule {entry:?} (canonical field names or custom.<name>)"
                    ));
                }
            }
            required.push(Requirement { any_of });
        }
        Ok(Rules { required })
    }
}

/// A canonical field name or `custom.<name>`.
pub fn is_field_name(name: &str) -> bool {
    super::FIELD_NAMES.contains(&name) || name.strip_prefix("custom.").is_some_and(|rest| !rest.is_empty())
}

/// A field is usable when present, non-empty and (for phones) a valid E.164 number.
pub fn is_usable(lead: &Lead, field: &str) -> bool {
    match lead.get(field) {
        None => false,
        Some(v) if v.trim().is_empty() => false,
        Some(v) if field == "phone" || field == "phone_2" => is_e164(&v),
        Some(_) => true,
    }
}

fn is_e164(v: &str) -> bool {
    v.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks `lead` against `rules`, adding one problem per failing requirement to `errors`
/// (which already holds the normalizer's errors, e.g. an invalid e-mail).
pub fn validate(lead: &Lead, rules: &Rules, errors: &mut Vec<Problem>) {
    for req in &rules.required {
        if req.any_of.iter().any(|f| is_usable(lead, f)) {
            continue;
        }
        // A field that already failed normalization is reported once, by the normalizer.
        if req.any_of.iter().any(|f| errors.iter().any(|p| &p.field == f)) {
            continue;
        }
        let problem = match req.any_of.as_slice() {
            [one] => Problem::new(one, "required", format!("{one} is required")),
            many => {
                Problem::new(many.join("|"), "required", format!("one of {} is required", many.join(", ")))
            }
        };
        errors.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_need_one_usable_field() {
        let rules = Rules::parse(&["last_name".into(), "email or phone".into()]).unwrap();
        let mut lead = Lead { phone: Some("555".into()), ..Lead::default() };
        let mut errors = Vec::new();
        validate(&lead, &rules, &mut errors);
        let fields: Vec<_> = errors.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["last_name", "email|phone"]);

        lead.phone = Some("+14155550142".into());
        lead.last_name = Some("Doe".into());
        let mut errors = Vec::new();
        validate(&lead, &rules, &mut errors);
        assert!(errors.is_empty());
    }

    #[test]
    fn unknown_fields_in_rules_are_refused() {
        assert!(Rules::parse(&["emial".into()]).unwrap_err().contains("emial"));
        assert!(Rules::parse(&["custom.budget".into()]).is_ok());
    }
}
