//! The canonical lead: the one shape every parser's output is normalized into.
//!
//! Field names are those of [`FIELD_NAMES`] (the README lists them); anything a vendor sends that has no
//! canonical home is kept under `custom`, never dropped.

pub mod normalize;
pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A normalized lead. Serialized as the `fields` object of the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Lower-cased, syntax-checked address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// E.164 when the number is valid; the vendor's text (with a warning) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_ext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_2_ext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Subdivision code (`CA`) where the country is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// The vendor's own id: the idempotency key for its retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_lead_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// A vendor's test lead (Google Ads `is_test`): stored and flagged like any lead, but
    /// never sold (not routed, not offered) and never a dedupe original.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Every field without a canonical home, name → value as sent.
    #[serde(default)]
    pub custom: Map<String, Value>,
}

/// TCPA/GDPR consent and its evidence, kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trustedform_cert_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trustedform_ping_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jornaya_leadid: Option<String>,
}

/// One thing wrong (or worth a warning) about one field of one lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Canonical field name (or the vendor's name for custom fields).
    pub field: String,
    /// Machine-readable reason code, e.g. `required`, `invalid`.
    pub code: String,
    /// Human-readable message naming the problem.
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}

impl Lead {
    /// Value of a canonical top-level string field by name (`custom.x` reads custom).
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match name {
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "email" => &self.email,
            "phone" => &self.phone,
            "phone_ext" => &self.phone_ext,
            "phone_2" => &self.phone_2,
            "phone_2_ext" => &self.phone_2_ext,
            "street" => &self.street,
            "street_2" => &self.street_2,
            "city" => &self.city,
            "state" => &self.state,
            "postal_code" => &self.postal_code,
            "country" => &self.country,
            "company" => &self.company,
            "title" => &self.title,
            "product" => &self.product,
            "comments" => &self.comments,
            "vendor_lead_id" => &self.vendor_lead_id,
            "ip_address" => &self.ip_address,
            "user_agent" => &self.user_agent,
            "landing_page_url" => &self.landing_page_url,
            other => {
                let key = other.strip_prefix("custom.")?;
                return self.custom.get(key).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
        };
        v.clone()
    }
}

/// The canonical field names a config may refer to (validation, dedupe keys, mappings).
pub const FIELD_NAMES: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_ext",
    "phone_2",
    "phone_2_ext",
    "street",
    "street_2",
    "city",
    "state",
    "postal_code",
    "country",
    "company",
    "title",
    "product",
    "comments",
    "vendor_lead_id",
    "ip_address",
    "user_agent",
    "landing_page_url",
];
