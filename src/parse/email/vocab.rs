//! What a vendor's label means, read the way a person reads it: `Renter email`,
//! `Inquirer`, `Work`, `City, State, Zip Code`, `From` inside the body.
//!
//! The built-in aliases of the normalizer come first; then role words are dropped
//! (`Renter name` → `name`); then the words of the label decide (`Work`, `Mobile` → a
//! phone). Labels that belong to the sender side (the agent, the office, support) or to a
//! quoted header block (`To`, `Date`, `Subject`) are [`Meaning::Skip`].

use std::sync::LazyLock;

use crate::lead::normalize::aliases::{self, Aliases, Target};

static DEFAULT_ALIASES: LazyLock<Aliases> = LazyLock::new(Aliases::default);

/// What a label says its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    Email,
    Phone,
    /// A whole name (split by the normalizer).
    Name,
    FirstName,
    LastName,
    /// A person, given as a name, an address, a number or several of them
    /// (`Contact:`, `From:` in the body, `Inquirer:`): the value's shape decides.
    Contact,
    /// `City, State, Zip Code`: a composite split into its fields.
    Composite(Vec<&'static str>),
    /// Another canonical field (`city`, `comments`, `vendor_lead_id` …).
    Field(&'static str),
    /// Not a lead field the extractor knows: kept under the vendor's label (custom).
    Custom,
    /// Never the lead's: sender-side or a header block.
    Skip,
}

impl Meaning {
    /// Whether the value may be a person's contact (its shape is checked).
    pub fn is_contact(&self) -> bool {
        matches!(
            self,
            Meaning::Email
                | Meaning::Phone
                | Meaning::Name
                | Meaning::FirstName
                | Meaning::LastName
                | Meaning::Contact
        )
    }
}

/// How a label was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Understood {
    pub meaning: Meaning,
    /// The label names the field outright (an alias, or one after dropping a role word),
    /// rather than by a word the extractor interpreted.
    pub direct: bool,
}

/// Words that mark a line or a label as the sender's, not the lead's.
pub const SENDER_SIDE: &[&str] = &[
    "agent",
    "listing",
    "broker",
    "realtor",
    "dealer",
    "office",
    "support",
    "customer service",
    "helpdesk",
    "unsubscribe",
    "preferences",
    "copyright",
    "©",
    "privacy",
    "do not reply",
    "don't reply",
    "no-reply",
    "noreply",
    "questions?",
    "call us",
    "contact us",
    "our team",
    "powered by",
    "manage your",
    "terms of",
    "all rights reserved",
    "opt out",
    "opt-out",
    "notification settings",
    "email settings",
];

/// Words of a vendor's footer: where they appear in the second half of a message, what
/// follows is the vendor's (its address, its phone), not the lead's.
pub const FOOTER: &[&str] = &[
    "unsubscribe",
    "privacy",
    "copyright",
    "©",
    "all rights reserved",
    "terms of",
    "manage your",
    "email settings",
    "notification settings",
    "preferences",
    "opt out",
    "opt-out",
    "you are receiving this",
    "you received this",
    "this email was sent",
    "this e-mail was sent",
    "this message was sent",
];

/// Whether `text` is a footer line (see [`FOOTER`]).
pub fn footer(text: &str) -> bool {
    let lower = text.to_lowercase();
    FOOTER.iter().any(|w| lower.contains(w))
}

/// Whether `text` speaks of the sender side (see [`SENDER_SIDE`]).
pub fn sender_side(text: &str) -> bool {
    let lower = text.to_lowercase();
    SENDER_SIDE.iter().any(|w| lower.contains(w))
}

/// Labels of a quoted or forwarded header block.
const HEADER_LABELS: &[&str] =
    &["to", "cc", "bcc", "sent", "date", "subject", "replyto", "reply", "received"];

/// Labels that name a person of the lead's side, whose value is a name or a contact.
const PERSON_LABELS: &[&str] = &[
    "from",
    "contact",
    "contactinfo",
    "contactdetails",
    "contactinformation",
    "inquirer",
    "enquirer",
    "inquiredby",
    "sender",
    "lead",
    "leadinfo",
    "leaddetails",
    "customer",
    "client",
    "prospect",
    "requester",
    "requestedby",
    "submittedby",
    "applicant",
    "renter",
    "tenant",
    "buyer",
    "guest",
    "visitor",
    "homeowner",
    "shopper",
    "borrower",
    "patient",
    "student",
    "who",
];

/// Role words dropped in front of a label (`Renter email` → `email`).
const ROLE_WORDS: &[&str] = &[
    "renter",
    "tenant",
    "buyer",
    "customer",
    "client",
    "lead",
    "prospect",
    "contact",
    "inquirer",
    "enquirer",
    "sender",
    "your",
    "their",
    "his",
    "her",
    "primary",
    "preferred",
    "best",
    "applicant",
    "guest",
    "visitor",
    "homeowner",
    "shopper",
    "borrower",
    "patient",
    "student",
    "requester",
    "user",
    "consumer",
    "caller",
    "person",
    "the",
];

/// Understands one label (as written, trailing colon allowed).
pub fn understand(label: &str) -> Understood {
    let label = label.trim().trim_end_matches([':', '*']).trim();
    let skip = Understood { meaning: Meaning::Skip, direct: true };
    let key = aliases::key(label);
    if key.is_empty() || HEADER_LABELS.contains(&key.as_str()) || sender_side(label) {
        return skip;
    }
    if let Some(c) = composite(label) {
        return Understood { meaning: Meaning::Composite(c), direct: true };
    }
    if let Some(m) = alias(label).or_else(|| foreign(&key)) {
        return Understood { meaning: m, direct: true };
    }
    let words: Vec<String> = label
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let stripped: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .skip_while(|w| ROLE_WORDS.contains(w))
        .filter(|w| *w != "s")
        .collect();
    if !stripped.is_empty()
        && stripped.len() < words.len()
        && let Some(m) = alias(&stripped.join(" "))
    {
        return Understood { meaning: m, direct: true };
    }
    // "Inquiry from", "Submitted by", "Message from": the person it is from.
    let from_by = words.len() >= 2 && words.last().is_some_and(|w| w == "from" || w == "by");
    if PERSON_LABELS.contains(&key.as_str()) || (stripped.is_empty() && !words.is_empty()) || from_by {
        return Understood { meaning: Meaning::Contact, direct: false };
    }
    let has = |w: &str| words.iter().any(|x| x == w);
    let meaning = if has("email") || has("mail") || key.contains("email") {
        Meaning::Email
    } else if [
        "phone",
        "mobile",
        "cell",
        "tel",
        "telephone",
        "work",
        "home",
        "landline",
        "whatsapp",
        "sms",
        "callback",
        "number",
    ]
    .iter()
    .any(|w| has(w))
    {
        Meaning::Phone
    } else if has("name") {
        if has("first") || has("given") {
            Meaning::FirstName
        } else if has("last") || has("family") || has("surname") {
            Meaning::LastName
        } else {
            Meaning::Name
        }
    } else {
        Meaning::Custom
    };
    Understood { meaning, direct: false }
}

/// Whether the normalizer's built-in aliases map `label` (so a record field under that
/// name would land on a canonical field).
pub fn is_alias(label: &str) -> bool {
    DEFAULT_ALIASES.resolve(label).is_some()
}

/// Labels of Spanish, French, German and Portuguese vendors, and a few English ones the
/// normalizer leaves to custom but a person reads at once. Keyed by [`aliases::key`].
fn foreign(key: &str) -> Option<Meaning> {
    Some(match key {
        "nombre" | "nombrecompleto" | "nombreyapellido" | "nombreyapellidos" | "nom" | "nomcomplet"
        | "nometprenom" | "prenometnom" | "nome" | "nomecompleto" | "nomeesobrenome" | "vollername"
        | "firstandlastname" | "firstlastname" | "nameandsurname" => Meaning::Name,
        "prenom" | "prénom" | "vorname" | "primeironome" => Meaning::FirstName,
        "apellido" | "apellidos" | "nomdefamille" | "nachname" | "sobrenome" => Meaning::LastName,
        "correo" | "correoelectronico" | "correoelectrónico" | "courriel" | "adressecourriel" | "mel"
        | "adresseemail" | "emailadresse" | "mailadresse" => Meaning::Email,
        "telefono" | "teléfono" | "celular" | "movil" | "móvil" | "telephone" | "téléphone" | "portable"
        | "telefon" | "handy" | "telemovel" | "telemóvel" => Meaning::Phone,
        "comentarios" | "comentario" | "mensaje" | "commentaires" | "nachricht" | "mensagem" => {
            Meaning::Field("comments")
        }
        "ciudad" | "ville" | "stadt" | "cidade" => Meaning::Field("city"),
        "codigopostal" | "códigopostal" | "codepostal" | "plz" | "cep" => Meaning::Field("postal_code"),
        "project" | "projecttype" | "typeofproject" => Meaning::Field("product"),
        _ => return None,
    })
}

/// A label the built-in aliases map.
fn alias(label: &str) -> Option<Meaning> {
    Some(match DEFAULT_ALIASES.resolve(label)? {
        Target::FullName => Meaning::Name,
        Target::AnyPhone => Meaning::Phone,
        Target::Field(f) => match f.name() {
            "email" => Meaning::Email,
            "first_name" => Meaning::FirstName,
            "last_name" => Meaning::LastName,
            "phone" | "phone_2" => Meaning::Phone,
            name => Meaning::Field(name),
        },
        Target::Consent(_) | Target::Custom(_) => return None,
    })
}

/// `City, State, Zip Code`, `City/State/Zip`, `State & Zip`: two or more address parts.
fn composite(label: &str) -> Option<Vec<&'static str>> {
    let parts: Vec<&str> = label
        .split([',', '/', '&', '|'])
        .flat_map(|p| p.split(" and "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let named: Vec<&'static str> = if parts.len() >= 2 {
        parts.iter().map(|p| address_part(p)).collect::<Option<Vec<_>>>()?
    } else {
        // "City State Zip" written with spaces only.
        let key = aliases::key(label);
        match key.as_str() {
            "citystatezip" | "citystatezipcode" | "citystatepostalcode" | "citystzip" => {
                vec!["city", "state", "postal_code"]
            }
            "citystate" => vec!["city", "state"],
            "statezip" => vec!["state", "postal_code"],
            _ => return None,
        }
    };
    (named.len() >= 2).then_some(named)
}

fn address_part(part: &str) -> Option<&'static str> {
    match aliases::key(part).as_str() {
        "city" | "town" => Some("city"),
        "state" | "st" | "province" | "region" => Some("state"),
        "zip" | "zipcode" | "postal" | "postalcode" | "postcode" => Some("postal_code"),
        "country" => Some("country"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_as_a_person_reads_them() {
        assert_eq!(understand("Renter email:").meaning, Meaning::Email);
        assert_eq!(understand("Renter name").meaning, Meaning::Name);
        assert_eq!(understand("Work").meaning, Meaning::Phone);
        assert_eq!(understand("Mobile:").meaning, Meaning::Phone);
        assert_eq!(understand("Inquirer").meaning, Meaning::Contact);
        assert_eq!(understand("From").meaning, Meaning::Contact);
        assert_eq!(understand("Contact").meaning, Meaning::Contact);
        assert_eq!(understand("Inquiry from").meaning, Meaning::Contact);
        assert_eq!(understand("Subject").meaning, Meaning::Skip);
        assert_eq!(understand("Listing agent phone").meaning, Meaning::Skip);
        assert_eq!(
            understand("City, State, Zip Code").meaning,
            Meaning::Composite(vec!["city", "state", "postal_code"])
        );
        assert_eq!(
            understand("City/State/Zip").meaning,
            Meaning::Composite(vec!["city", "state", "postal_code"])
        );
        assert_eq!(understand("Zip").meaning, Meaning::Field("postal_code"));
        assert_eq!(understand("Move-in date").meaning, Meaning::Custom);
        assert_eq!(understand("Buyer's phone").meaning, Meaning::Phone);
    }
}
