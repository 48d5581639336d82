//! Normalization: one parser [`Record`] → one canonical [`Lead`], plus its problems.
//!
//! What it guarantees:
//! - **Nothing is dropped.** A field with no canonical home, a second value for a field
//!   already filled, a third phone, a list where one value was expected, and a value that
//!   failed a check which rejects the lead all go to `lead.custom` under the vendor's own
//!   name with the value as sent (numbers stay numbers). Only empty strings, `null` and
//!   empty lists/objects are skipped: they carry nothing and mean "not given".
//! - **Nothing is invented.** A phone that does not parse is kept as the vendor wrote it
//!   (trimmed) with a warning; it is never completed or guessed.
//! - **Canonical fields hold checked values.** `email` only ever holds an address that
//!   [`Email::parse`] accepted and a US `postal_code` only a [`UsZip`]: an invalid e-mail or
//!   ZIP is an *error* (the lead will be rejected) and its raw value is kept under
//!   `custom` by its vendor name, not in the canonical field, so no later stage can mistake
//!   it for a checked value. The error's message quotes the value for the operator.
//! - **Total.** No input makes it panic; work is linear in the record's size and problem
//!   messages quote at most a bounded prefix of a value.
//!
//! Errors mean the lead is rejected; warnings are kept beside the lead and do not stop it.
//! Whether a field is *required* is validation's business, not this stage's.

pub mod address;
pub mod aliases;
pub mod country;
pub mod email;
pub mod name;
pub mod phone;
mod text;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use serde_json::Value;

pub use address::{StateScheme, UsZip};
pub use aliases::{Aliases, ConsentPart, Field, Target};
pub use email::Email;
pub use phone::Phone;

use crate::lead::{Consent, Lead, Problem};
use crate::parse::Record;
use crate::parse::vendors::Mapped;
use text::{is_absent, quote, scalar_text, single_line};

/// Machine-readable problem codes produced by this stage.
pub mod code {
    /// The value is malformed or not what the field holds.
    pub const INVALID: &str = "invalid";
    /// Two vendor fields gave different values for one canonical field.
    pub const CONFLICT: &str = "conflict";
}

/// Why one value could not become its canonical form. Becomes a [`Problem`] once the
/// field it belongs to is known ([`FieldError::into_problem`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    code: &'static str,
    message: String,
}

impl FieldError {
    /// A malformed value ([`code::INVALID`]); the message names the value and the problem.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { code: code::INVALID, message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn into_problem(self, field: &str) -> Problem {
        Problem::new(field, self.code, self.message)
    }
}

/// Per-source settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// ISO alpha-2 region for phones written without a country code, and the country
    /// assumed for ZIP codes and states when a lead names none. A lead's own (recognised)
    /// country wins over it for its phones.
    pub default_region: String,
    pub aliases: Aliases,
    /// Lower-case the local part of e-mail addresses (see [`Email::parse`]).
    pub lowercase_email_local: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self { default_region: "US".to_owned(), aliases: Aliases::default(), lowercase_email_local: true }
    }
}

/// The canonical lead and what was wrong with the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    pub lead: Lead,
    /// Problems that reject the lead (`email`, US `postal_code`).
    pub errors: Vec<Problem>,
    /// Problems kept beside an accepted lead (a phone kept raw, an unknown state …).
    pub warnings: Vec<Problem>,
}

/// Maps a record onto the canonical lead. Never fails: see the module docs for what
/// becomes an error, a warning or a custom field.
pub fn normalize(record: &Record, opts: &NormalizeOptions) -> Normalized {
    let mut n = Normalizer::default();
    n.sort(record, &opts.aliases);
    n.build(opts);
    Normalized { lead: n.lead, errors: n.errors, warnings: n.warnings }
}

/// One vendor field on its way to a canonical home.
#[derive(Debug, Clone)]
struct Entry<'r> {
    /// The vendor's name, for custom and messages.
    name: &'r str,
    value: &'r Value,
    /// The value's text (numbers and booleans in their JSON form).
    text: String,
}

#[derive(Debug, Default)]
struct Normalizer<'r> {
    fields: BTreeMap<Field, Entry<'r>>,
    /// Phone-like fields in document order, before they are given a slot.
    phones: Vec<Entry<'r>>,
    full_name: Option<Entry<'r>>,
    consent: BTreeMap<ConsentPart, Entry<'r>>,
    lead: Lead,
    /// Custom keys that became a list because the vendor repeated the name.
    repeated: HashSet<String>,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl<'r> Normalizer<'r> {
    /// First pass: every field to its target, in document order.
    fn sort(&mut self, record: &'r Record, aliases: &Aliases) {
        for (name, value) in record {
            if is_absent(value) {
                continue;
            }
            // Names a vendor parser has mapped itself are not guessed at again.
            match crate::parse::vendors::mapped(name) {
                Mapped::No => {}
                Mapped::Custom(custom_name) => {
                    self.custom(custom_name, value.clone());
                    continue;
                }
                Mapped::TestLead => {
                    self.lead.test = consent_flag(value) == Some(true);
                    continue;
                }
            }
            let target = match aliases.resolve(name) {
                None => {
                    self.custom(name, value.clone());
                    continue;
                }
                Some(Target::Custom(custom_name)) => {
                    self.custom(custom_name, value.clone());
                    continue;
                }
                Some(t) => t,
            };
            let Some(text) = scalar_text(value) else {
                self.warnings.push(Problem::new(
                    target.field_name(),
                    code::INVALID,
                    format!("`{name}` holds a list or object, not a single value; kept under custom"),
                ));
                self.custom(name, value.clone());
                continue;
            };
            let entry = Entry { name, value, text };
            match target {
                Target::Field(f) => {
                    let first = self.fields.get(f).cloned();
                    match first {
                        Some(first) => self.duplicate(f.name(), &first, entry),
                        None => {
                            self.fields.insert(*f, entry);
                        }
                    }
                }
                Target::AnyPhone => self.phones.push(entry),
                Target::FullName => match self.full_name.clone() {
                    Some(first) => self.duplicate(aliases::FULL_NAME, &first, entry),
                    None => self.full_name = Some(entry),
                },
                Target::Consent(part) => {
                    let first = self.consent.get(part).cloned();
                    match first {
                        Some(first) => self.duplicate(part.name(), &first, entry),
                        None => {
                            self.consent.insert(*part, entry);
                        }
                    }
                }
                Target::Custom(_) => {}
            }
        }
        // Phone-like names take the slots explicit `phone`/`phone_2` left free.
        for entry in std::mem::take(&mut self.phones) {
            if let Some(slot) =
                [Field::Phone, Field::Phone2].into_iter().find(|f| !self.fields.contains_key(f))
            {
                self.fields.insert(slot, entry);
            } else {
                self.custom(entry.name, entry.value.clone());
            }
        }
    }

    /// A second value for a filled target: the first wins, this one is kept under custom,
    /// and a warning says so when the two differ.
    fn duplicate(&mut self, field: &str, first: &Entry<'r>, again: Entry<'r>) {
        if single_line(&first.text) != single_line(&again.text) {
            self.warnings.push(Problem::new(
                field,
                code::CONFLICT,
                format!(
                    "`{}` and `{}` both give {field}; kept the value of `{}`, the other is under custom",
                    first.name, again.name, first.name
                ),
            ));
        }
        self.custom(again.name, again.value.clone());
    }

    /// Puts a value under custom. A repeated name becomes a list of its values in
    /// document order, rather than the last one silently replacing the others.
    fn custom(&mut self, name: &str, value: Value) {
        match self.lead.custom.get_mut(name) {
            None => {
                self.lead.custom.insert(name.to_owned(), value);
            }
            Some(Value::Array(values)) if self.repeated.contains(name) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
                self.repeated.insert(name.to_owned());
            }
        }
    }

    /// Second pass: each target's value to its canonical form.
    fn build(&mut self, opts: &NormalizeOptions) {
        let country = self.country();
        self.names();
        self.email(opts.lowercase_email_local);

        // A lead's own country says more about its phones than the source's region.
        let phone_region = match country {
            Country::Known(c) if phonenumber::country::Id::from_str(c).is_ok() => c.to_owned(),
            _ => opts.default_region.clone(),
        };
        self.phone(Field::Phone, Field::PhoneExt, &phone_region);
        self.phone(Field::Phone2, Field::Phone2Ext, &phone_region);

        let region = opts.default_region.to_ascii_uppercase();
        let (usps, scheme) = match country {
            Country::Known(c) if address::uses_usps(c) => (true, StateScheme::Us),
            Country::Known("CA") => (false, StateScheme::Ca),
            Country::Known(_) | Country::Unknown => (false, StateScheme::Other),
            Country::Absent if address::uses_usps(&region) => (true, StateScheme::Guess { us_first: true }),
            Country::Absent if region == "CA" => (false, StateScheme::Guess { us_first: false }),
            Country::Absent => (false, StateScheme::Other),
        };
        if let Some(e) = self.fields.remove(&Field::State) {
            let (state, warning) = address::normalize_state(&e.text, scheme);
            self.warn(Field::State, warning);
            self.lead.state = Some(state);
        }
        self.postal_code(usps);

        for (field, entry) in std::mem::take(&mut self.fields) {
            self.plain(field, entry);
        }
        self.consent();
    }

    fn country(&mut self) -> Country {
        let Some(e) = self.fields.remove(&Field::Country) else {
            return Country::Absent;
        };
        match country::alpha2(&e.text) {
            Some(code) => {
                self.lead.country = Some(code.to_owned());
                Country::Known(code)
            }
            None => {
                let kept = single_line(&e.text);
                self.warnings.push(Problem::new(
                    Field::Country.name(),
                    code::INVALID,
                    format!("{} is not a known country; kept as sent", quote(&kept)),
                ));
                self.lead.country = Some(kept);
                Country::Unknown
            }
        }
    }

    /// Given first/last names win; a full name fills what is missing. The full name is
    /// also kept under custom when part of it was not used, so nothing is lost.
    fn names(&mut self) {
        self.lead.first_name = self.fields.remove(&Field::FirstName).and_then(|e| name::tidy(&e.text));
        self.lead.last_name = self.fields.remove(&Field::LastName).and_then(|e| name::tidy(&e.text));
        let Some(full) = self.full_name.take() else {
            return;
        };
        let (first, last) = name::split_full(&full.text);
        let mut unused = false;
        for (slot, part) in [(&mut self.lead.first_name, first), (&mut self.lead.last_name, last)] {
            match (slot.is_some(), part) {
                (false, Some(p)) => *slot = Some(p),
                (true, Some(_)) => unused = true,
                (_, None) => {}
            }
        }
        if unused {
            self.custom(full.name, full.value.clone());
        }
    }

    fn email(&mut self, lowercase_local: bool) {
        let Some(e) = self.fields.remove(&Field::Email) else {
            return;
        };
        match Email::parse(&e.text, lowercase_local) {
            Ok(email) => self.lead.email = Some(email.into_string()),
            Err(err) => {
                self.errors.push(err.into_problem(Field::Email.name()));
                self.custom(e.name, e.value.clone());
            }
        }
    }

    /// E.164 and extension; an invalid number is kept as written, with a warning. An
    /// explicit extension field wins over one written inside the number.
    fn phone(&mut self, field: Field, ext_field: Field, region: &str) {
        let explicit_ext = self.fields.remove(&ext_field).map(|e| single_line(&e.text));
        let Some(e) = self.fields.remove(&field) else {
            if let Some(ext) = explicit_ext {
                self.set(ext_field, ext);
            }
            return;
        };
        let (number, parsed_ext) = match Phone::parse(&e.text, region) {
            Ok(phone) => phone.into_parts(),
            Err(err) => {
                self.warnings.push(err.into_problem(field.name()));
                (single_line(&e.text), None)
            }
        };
        self.set(field, number);
        let ext = match (explicit_ext, parsed_ext) {
            (Some(explicit), Some(parsed)) if explicit != parsed => {
                self.warnings.push(Problem::new(
                    ext_field.name(),
                    code::CONFLICT,
                    format!(
                        "`{}` has extension {parsed} but the extension field says {explicit}; kept {explicit}",
                        e.name
                    ),
                ));
                Some(explicit)
            }
            (explicit, parsed) => explicit.or(parsed),
        };
        if let Some(ext) = ext {
            self.set(ext_field, ext);
        }
    }

    fn postal_code(&mut self, usps: bool) {
        let Some(e) = self.fields.remove(&Field::PostalCode) else {
            return;
        };
        if !usps {
            self.lead.postal_code = Some(address::foreign_postal_code(&e.text));
            return;
        }
        match UsZip::parse(e.value) {
            Ok(zip) => self.lead.postal_code = Some(zip.into_string()),
            Err(err) => {
                self.errors.push(err.into_problem(Field::PostalCode.name()));
                self.custom(e.name, e.value.clone());
            }
        }
    }

    /// Fields with no rule of their own.
    fn plain(&mut self, field: Field, e: Entry<'r>) {
        let value = match field {
            // Free text: line breaks are content.
            Field::Comments => e.text.trim().to_owned(),
            // The idempotency key: inner spacing is part of the vendor's id.
            Field::VendorLeadId => e.text.trim().to_owned(),
            Field::IpAddress => match e.text.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => {
                    let kept = single_line(&e.text);
                    self.warnings.push(Problem::new(
                        field.name(),
                        code::INVALID,
                        format!("{} is not an IP address; kept as sent", quote(&kept)),
                    ));
                    kept
                }
            },
            _ => single_line(&e.text),
        };
        self.set(field, value);
    }

    /// The consent flag is read as yes/no; its evidence is kept verbatim.
    fn consent(&mut self) {
        if self.consent.is_empty() {
            return;
        }
        let mut consent = Consent::default();
        for (part, e) in std::mem::take(&mut self.consent) {
            let verbatim = match e.value {
                Value::String(s) => s.clone(),
                _ => e.text.clone(),
            };
            match part {
                ConsentPart::Given => match consent_flag(e.value) {
                    Some(given) => consent.given = Some(given),
                    None => {
                        self.warnings.push(Problem::new(
                            part.name(),
                            code::INVALID,
                            format!("{} is not a yes/no answer; kept under custom", quote(&e.text)),
                        ));
                        self.custom(e.name, e.value.clone());
                    }
                },
                ConsentPart::Text => consent.text = Some(verbatim),
                ConsentPart::Timestamp => consent.timestamp = Some(verbatim),
                ConsentPart::TrustedformCertUrl => consent.trustedform_cert_url = Some(verbatim),
                ConsentPart::TrustedformPingUrl => consent.trustedform_ping_url = Some(verbatim),
                ConsentPart::JornayaLeadid => consent.jornaya_leadid = Some(verbatim),
            }
        }
        if consent != Consent::default() {
            self.lead.consent = Some(consent);
        }
    }

    fn warn(&mut self, field: Field, warning: Option<FieldError>) {
        if let Some(w) = warning {
            self.warnings.push(w.into_problem(field.name()));
        }
    }

    fn set(&mut self, field: Field, value: String) {
        let slot = match field {
            Field::FirstName => &mut self.lead.first_name,
            Field::LastName => &mut self.lead.last_name,
            Field::Email => &mut self.lead.email,
            Field::Phone => &mut self.lead.phone,
            Field::PhoneExt => &mut self.lead.phone_ext,
            Field::Phone2 => &mut self.lead.phone_2,
            Field::Phone2Ext => &mut self.lead.phone_2_ext,
            Field::Street => &mut self.lead.street,
            Field::Street2 => &mut self.lead.street_2,
            Field::City => &mut self.lead.city,
            Field::State => &mut self.lead.state,
            Field::PostalCode => &mut self.lead.postal_code,
            Field::Country => &mut self.lead.country,
            Field::Company => &mut self.lead.company,
            Field::Title => &mut self.lead.title,
            Field::Product => &mut self.lead.product,
            Field::Comments => &mut self.lead.comments,
            Field::VendorLeadId => &mut self.lead.vendor_lead_id,
            Field::IpAddress => &mut self.lead.ip_address,
            Field::UserAgent => &mut self.lead.user_agent,
            Field::LandingPageUrl => &mut self.lead.landing_page_url,
        };
        *slot = (!value.is_empty()).then_some(value);
    }
}

/// What the record said about the lead's country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Country {
    Absent,
    /// Given but not recognised: no country-specific rule applies.
    Unknown,
    Known(&'static str),
}

/// A consent answer: booleans, 1/0, and the words forms and spreadsheets use.
pub fn consent_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "1" | "on" | "checked" | "agree" | "agreed" | "accepted" => {
                Some(true)
            }
            "no" | "n" | "false" | "f" | "0" | "off" | "unchecked" | "declined" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
