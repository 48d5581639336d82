//! Vendor field names → canonical targets.
//!
//! Vendors spell the same field a dozen ways (`First Name`, `first_name`, `fname`,
//! `FirstName`), so names are matched by a *key*: lower-cased, with everything that is not
//! a letter or digit dropped (`first-name` and `First Name` both become `firstname`).
//!
//! Resolution order, first hit wins:
//! 1. the source's overrides ([`Aliases::with_overrides`]), by key;
//! 2. a name that is *exactly* a target name (`phone_2`, `consent.text`) maps to itself;
//! 3. the built-in table, by key.
//!
//! A name that resolves to nothing goes to `custom` under the vendor's own name. Dotted
//! names (flattened JSON such as `utm.source`) are matched as a whole, never by their last
//! segment: `vendor.name` is the dealer's name in ADF, not the lead's, so guessing from
//! leaves would put the wrong person's data into canonical fields.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// A canonical top-level string field of [`Lead`](crate::lead::Lead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    FirstName,
    LastName,
    Email,
    Phone,
    PhoneExt,
    Phone2,
    Phone2Ext,
    Street,
    Street2,
    City,
    State,
    PostalCode,
    Country,
    Company,
    Title,
    Product,
    Comments,
    VendorLeadId,
    IpAddress,
    UserAgent,
    LandingPageUrl,
}

impl Field {
    /// Every field, in the order of [`FIELD_NAMES`](crate::lead::FIELD_NAMES).
    pub const ALL: [Field; 21] = [
        Field::FirstName,
        Field::LastName,
        Field::Email,
        Field::Phone,
        Field::PhoneExt,
        Field::Phone2,
        Field::Phone2Ext,
        Field::Street,
        Field::Street2,
        Field::City,
        Field::State,
        Field::PostalCode,
        Field::Country,
        Field::Company,
        Field::Title,
        Field::Product,
        Field::Comments,
        Field::VendorLeadId,
        Field::IpAddress,
        Field::UserAgent,
        Field::LandingPageUrl,
    ];

    /// The canonical name, as in [`crate::lead::FIELD_NAMES`] and the API.
    pub fn name(self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::PhoneExt => "phone_ext",
            Field::Phone2 => "phone_2",
            Field::Phone2Ext => "phone_2_ext",
            Field::Street => "street",
            Field::Street2 => "street_2",
            Field::City => "city",
            Field::State => "state",
            Field::PostalCode => "postal_code",
            Field::Country => "country",
            Field::Company => "company",
            Field::Title => "title",
            Field::Product => "product",
            Field::Comments => "comments",
            Field::VendorLeadId => "vendor_lead_id",
            Field::IpAddress => "ip_address",
            Field::UserAgent => "user_agent",
            Field::LandingPageUrl => "landing_page_url",
        }
    }

    /// The field with exactly this canonical name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One part of [`Consent`](crate::lead::Consent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsentPart {
    /// The yes/no flag.
    Given,
    Text,
    Timestamp,
    TrustedformCertUrl,
    TrustedformPingUrl,
    JornayaLeadid,
}

impl ConsentPart {
    pub const ALL: [ConsentPart; 6] = [
        ConsentPart::Given,
        ConsentPart::Text,
        ConsentPart::Timestamp,
        ConsentPart::TrustedformCertUrl,
        ConsentPart::TrustedformPingUrl,
        ConsentPart::JornayaLeadid,
    ];

    /// The target name used in configs (`consent`, `consent.text`, …).
    pub fn name(self) -> &'static str {
        match self {
            ConsentPart::Given => "consent",
            ConsentPart::Text => "consent.text",
            ConsentPart::Timestamp => "consent.timestamp",
            ConsentPart::TrustedformCertUrl => "consent.trustedform_cert_url",
            ConsentPart::TrustedformPingUrl => "consent.trustedform_ping_url",
            ConsentPart::JornayaLeadid => "consent.jornaya_leadid",
        }
    }
}

/// Where a vendor field goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A canonical string field.
    Field(Field),
    /// A whole name, split into first and last name when those are not given.
    FullName,
    /// A phone-like name (`mobile`, `cell`, `phone_1` …): fills `phone`, then `phone_2`,
    /// in document order; a third goes to custom under its own name.
    AnyPhone,
    Consent(ConsentPart),
    /// `custom` under this name instead of the vendor's (only from overrides).
    Custom(String),
}

/// Name of the full-name target in configs.
pub const FULL_NAME: &str = "full_name";
/// Prefix of a custom target in configs.
pub const CUSTOM_PREFIX: &str = "custom.";

impl Target {
    /// Parses a target name as configs write it: a canonical field name, `full_name`,
    /// `consent`, `consent.<part>` or `custom.<name>`. The error names the bad target.
    pub fn parse(name: &str) -> Result<Target, String> {
        if let Some(field) = Field::from_name(name) {
            return Ok(Target::Field(field));
        }
        if name == FULL_NAME {
            return Ok(Target::FullName);
        }
        if let Some(part) = ConsentPart::ALL.into_iter().find(|p| p.name() == name) {
            return Ok(Target::Consent(part));
        }
        if let Some(custom) = name.strip_prefix(CUSTOM_PREFIX)
            && !custom.trim().is_empty()
        {
            return Ok(Target::Custom(custom.to_owned()));
        }
        Err(format!(
            "unknown target `{name}`: expected a canonical field name ({}), `{FULL_NAME}`, \
             one of {}, or `{CUSTOM_PREFIX}<name>`",
            crate::lead::FIELD_NAMES.join(", "),
            ConsentPart::ALL.map(ConsentPart::name).join(", "),
        ))
    }

    /// The name problems use for this target (`phone` for a phone-like field).
    pub fn field_name(&self) -> String {
        match self {
            Target::Field(f) => f.name().to_owned(),
            Target::FullName => FULL_NAME.to_owned(),
            Target::AnyPhone => Field::Phone.name().to_owned(),
            Target::Consent(p) => p.name().to_owned(),
            Target::Custom(name) => name.clone(),
        }
    }
}

/// The matching key of a vendor name: lower-cased letters and digits only.
///
/// `First Name`, `first_name`, `FirstName`, `first-name` and `\u{feff}First Name` (a CSV
/// header behind a byte-order mark) all give `firstname`.
pub fn key(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Vendor name → target, built-in table plus a source's overrides.
///
/// Cheap to clone: the built-in table is shared, only overrides are owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    overrides: HashMap<String, Target>,
}

impl Aliases {
    /// The built-in table plus per-source entries (vendor name → target name).
    ///
    /// Overrides win over everything else, including exact canonical names, so a source
    /// can send its `campaign` to `product` or its `name` to `custom.name`. Fails on the
    /// first unknown target, or a vendor name without a letter or digit, naming it.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Aliases, String> {
        let mut map = HashMap::with_capacity(overrides.len());
        for (vendor, target) in overrides {
            let k = key(vendor);
            if k.is_empty() {
                return Err(format!("field name `{vendor}` has no letter or digit to match on"));
            }
            let target = Target::parse(target).map_err(|e| format!("`{vendor}`: {e}"))?;
            map.insert(k, target);
        }
        Ok(Aliases { overrides: map })
    }

    /// Where the vendor's field `name` goes; `None` means custom under `name`.
    pub fn resolve(&self, name: &str) -> Option<&Target> {
        let k = key(name);
        self.overrides.get(&k).or_else(|| EXACT.get(name)).or_else(|| BUILTIN.get(&k))
    }
}

/// Target names that map to themselves when a vendor uses them verbatim.
static EXACT: LazyLock<HashMap<&'static str, Target>> = LazyLock::new(|| {
    let mut map: HashMap<&'static str, Target> =
        Field::ALL.into_iter().map(|f| (f.name(), Target::Field(f))).collect();
    map.insert(FULL_NAME, Target::FullName);
    for part in ConsentPart::ALL {
        map.insert(part.name(), Target::Consent(part));
    }
    map
});

/// The built-in table, keyed by [`key`].
static BUILTIN: LazyLock<HashMap<String, Target>> =
    LazyLock::new(|| BUILTIN_SPELLINGS.iter().map(|(name, t)| (key(name), t.clone())).collect());

use ConsentPart as C;
use Field as F;

/// Common vendor spellings. Written as vendors write them; matched by [`key`], so the
/// separators and case here are only for the reader.
///
/// Deliberately absent: `campaign` (a marketing id, not what the lead asks about: custom),
/// `source_id` (usually the traffic source, not the lead's id: map it per source),
/// `service` (Google Ads answers: custom).
pub(crate) const BUILTIN_SPELLINGS: &[(&str, Target)] = &[
    // names
    ("first_name", Target::Field(F::FirstName)),
    ("fname", Target::Field(F::FirstName)),
    ("first", Target::Field(F::FirstName)),
    ("given name", Target::Field(F::FirstName)),
    ("last_name", Target::Field(F::LastName)),
    ("lname", Target::Field(F::LastName)),
    ("last", Target::Field(F::LastName)),
    ("surname", Target::Field(F::LastName)),
    ("family name", Target::Field(F::LastName)),
    ("name", Target::FullName),
    ("full name", Target::FullName),
    ("contact name", Target::FullName),
    ("customer name", Target::FullName),
    // e-mail
    ("email", Target::Field(F::Email)),
    ("e-mail", Target::Field(F::Email)),
    ("email address", Target::Field(F::Email)),
    ("E-mail Address", Target::Field(F::Email)),
    ("email_addr", Target::Field(F::Email)),
    ("mail", Target::Field(F::Email)),
    // phones: all phone-like names fill phone, then phone_2, in document order
    ("phone", Target::AnyPhone),
    ("phone number", Target::AnyPhone),
    ("phone_1", Target::AnyPhone),
    ("phone_2", Target::AnyPhone),
    ("telephone", Target::AnyPhone),
    ("telephone number", Target::AnyPhone),
    ("tel", Target::AnyPhone),
    ("home phone", Target::AnyPhone),
    ("primary phone", Target::AnyPhone),
    ("day phone", Target::AnyPhone),
    ("daytime phone", Target::AnyPhone),
    ("mobile", Target::AnyPhone),
    ("mobile phone", Target::AnyPhone),
    ("mobile number", Target::AnyPhone),
    ("cell", Target::AnyPhone),
    ("cell phone", Target::AnyPhone),
    ("work phone", Target::AnyPhone),
    ("work phone number", Target::AnyPhone),
    ("cell number", Target::AnyPhone),
    ("alt phone", Target::AnyPhone),
    ("alternate phone", Target::AnyPhone),
    ("secondary phone", Target::AnyPhone),
    ("evening phone", Target::AnyPhone),
    ("phone_ext", Target::Field(F::PhoneExt)),
    ("ext", Target::Field(F::PhoneExt)),
    ("extension", Target::Field(F::PhoneExt)),
    ("phone extension", Target::Field(F::PhoneExt)),
    ("phone_1_ext", Target::Field(F::PhoneExt)),
    ("phone_2_ext", Target::Field(F::Phone2Ext)),
    ("phone_2_extension", Target::Field(F::Phone2Ext)),
    // address
    ("address", Target::Field(F::Street)),
    ("address1", Target::Field(F::Street)),
    ("address_1", Target::Field(F::Street)),
    ("addr1", Target::Field(F::Street)),
    ("street", Target::Field(F::Street)),
    ("street1", Target::Field(F::Street)),
    ("street address", Target::Field(F::Street)),
    ("address line 1", Target::Field(F::Street)),
    ("street_2", Target::Field(F::Street2)),
    ("address2", Target::Field(F::Street2)),
    ("address_2", Target::Field(F::Street2)),
    ("addr2", Target::Field(F::Street2)),
    ("street2", Target::Field(F::Street2)),
    ("address line 2", Target::Field(F::Street2)),
    ("apt", Target::Field(F::Street2)),
    ("apartment", Target::Field(F::Street2)),
    ("suite", Target::Field(F::Street2)),
    ("city", Target::Field(F::City)),
    ("town", Target::Field(F::City)),
    ("state", Target::Field(F::State)),
    ("province", Target::Field(F::State)),
    ("region", Target::Field(F::State)),
    ("st", Target::Field(F::State)),
    ("state/province", Target::Field(F::State)),
    ("state or province", Target::Field(F::State)),
    ("state code", Target::Field(F::State)),
    ("zip", Target::Field(F::PostalCode)),
    ("zipcode", Target::Field(F::PostalCode)),
    ("zip code", Target::Field(F::PostalCode)),
    ("zip_code", Target::Field(F::PostalCode)),
    ("postal", Target::Field(F::PostalCode)),
    ("postal code", Target::Field(F::PostalCode)),
    ("postcode", Target::Field(F::PostalCode)),
    ("country", Target::Field(F::Country)),
    ("country code", Target::Field(F::Country)),
    ("country name", Target::Field(F::Country)),
    // business
    ("company", Target::Field(F::Company)),
    ("company name", Target::Field(F::Company)),
    ("business", Target::Field(F::Company)),
    ("business name", Target::Field(F::Company)),
    ("organization", Target::Field(F::Company)),
    ("organisation", Target::Field(F::Company)),
    ("title", Target::Field(F::Title)),
    ("job title", Target::Field(F::Title)),
    // what the lead wants
    ("product", Target::Field(F::Product)),
    ("vertical", Target::Field(F::Product)),
    ("interest", Target::Field(F::Product)),
    ("product interest", Target::Field(F::Product)),
    ("comments", Target::Field(F::Comments)),
    ("comment", Target::Field(F::Comments)),
    ("notes", Target::Field(F::Comments)),
    ("note", Target::Field(F::Comments)),
    ("message", Target::Field(F::Comments)),
    ("description", Target::Field(F::Comments)),
    // ids and technical evidence
    ("vendor_lead_id", Target::Field(F::VendorLeadId)),
    ("lead_id", Target::Field(F::VendorLeadId)),
    ("leadid", Target::Field(F::VendorLeadId)),
    ("external_id", Target::Field(F::VendorLeadId)),
    ("source_lead_id", Target::Field(F::VendorLeadId)),
    ("ip", Target::Field(F::IpAddress)),
    ("ip_address", Target::Field(F::IpAddress)),
    ("client_ip", Target::Field(F::IpAddress)),
    ("user_ip", Target::Field(F::IpAddress)),
    ("user_agent", Target::Field(F::UserAgent)),
    ("ua", Target::Field(F::UserAgent)),
    ("landing_page", Target::Field(F::LandingPageUrl)),
    ("landing_page_url", Target::Field(F::LandingPageUrl)),
    ("page_url", Target::Field(F::LandingPageUrl)),
    ("url", Target::Field(F::LandingPageUrl)),
    ("source_url", Target::Field(F::LandingPageUrl)),
    // consent and its evidence
    ("consent", Target::Consent(C::Given)),
    ("consent_given", Target::Consent(C::Given)),
    ("consent.given", Target::Consent(C::Given)),
    ("tcpa", Target::Consent(C::Given)),
    ("tcpa_consent", Target::Consent(C::Given)),
    ("tcpa_opt_in", Target::Consent(C::Given)),
    ("opt_in", Target::Consent(C::Given)),
    ("tcpa_text", Target::Consent(C::Text)),
    ("tcpa_language", Target::Consent(C::Text)),
    ("tcpa_disclosure", Target::Consent(C::Text)),
    ("consent_text", Target::Consent(C::Text)),
    ("consent_language", Target::Consent(C::Text)),
    ("consent_timestamp", Target::Consent(C::Timestamp)),
    ("tcpa_timestamp", Target::Consent(C::Timestamp)),
    ("opt_in_timestamp", Target::Consent(C::Timestamp)),
    ("consent_date", Target::Consent(C::Timestamp)),
    ("trustedform", Target::Consent(C::TrustedformCertUrl)),
    ("trustedform_url", Target::Consent(C::TrustedformCertUrl)),
    ("trustedform_cert", Target::Consent(C::TrustedformCertUrl)),
    ("trustedform_cert_url", Target::Consent(C::TrustedformCertUrl)),
    ("xxTrustedFormCertUrl", Target::Consent(C::TrustedformCertUrl)),
    ("trustedform_ping_url", Target::Consent(C::TrustedformPingUrl)),
    ("xxTrustedFormPingUrl", Target::Consent(C::TrustedformPingUrl)),
    ("jornaya", Target::Consent(C::JornayaLeadid)),
    ("jornaya_leadid", Target::Consent(C::JornayaLeadid)),
    ("jornaya_lead_id", Target::Consent(C::JornayaLeadid)),
    ("leadid_token", Target::Consent(C::JornayaLeadid)),
    ("universal_leadid", Target::Consent(C::JornayaLeadid)),
];
