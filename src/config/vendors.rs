//! Per-source settings of the vendor endpoints: `[google_ads]`, `[meta]`, `[hubspot]`,
//! `[web_to_lead]` and `[leadconduit]` in `sources/<name>.toml`.
//!
//! A table's presence is what enables the endpoint (`POST /v1/sources/<name>/google-ads`
//! answers 404 for a source without `[google_ads]`). Secrets follow the key rules: the
//! ones leadgate only compares (the Google key, the Meta verify token) may be written as
//! `sha256:<hex>` or `${ENV}`; the ones it must use in clear (the Meta app secret and page
//! tokens) only as `${ENV}`. None is ever printed: [`Secret`]'s `Debug` is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::duration;
use super::env::EnvString;
use crate::auth::KeyHash;
use crate::deliver::http_client::{EgressPolicy, http_client};
use crate::deliver::retry::RetryPolicy;
use crate::lead::normalize::Target;

/// `[google_ads]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsFile {
    /// The key entered in the lead form's webhook settings (`${ENV}` or `sha256:<hex>`).
    pub key: EnvString,
}

/// `[meta]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaFile {
    /// The app secret: verifies `X-Hub-Signature-256` and signs `appsecret_proof` (`${ENV}`).
    pub app_secret: EnvString,
    /// The verify token entered in the app's webhook settings (`${ENV}` or `sha256:<hex>`).
    pub verify_token: EnvString,
    /// Page access token used to fetch leads from the Graph API (`${ENV}`).
    #[serde(default)]
    pub page_token: Option<EnvString>,
    /// Page id → token, when the source serves several pages (wins over `page_token`).
    #[serde(default)]
    pub page_tokens: BTreeMap<String, EnvString>,
    /// Graph API base URL, version included.
    #[serde(default = "default_graph_url")]
    pub graph_url: EnvString,
    /// Lead fields requested from the Graph API.
    #[serde(default = "default_fields")]
    pub fields: String,
    /// Delays before each fetch attempt (the first is made at once); then the fetch is dead.
    #[serde(default = "default_meta_retry")]
    pub retry: Vec<String>,
    /// Timeout of one Graph API request.
    #[serde(default = "ten_seconds", deserialize_with = "duration::de")]
    pub timeout: Duration,
    /// Private/loopback ranges the Graph URL may resolve to (tests, proxies).
    #[serde(default)]
    pub allow_private: Vec<String>,
}

fn default_graph_url() -> EnvString {
    EnvString::literal(DEFAULT_GRAPH_URL)
}
fn default_fields() -> String {
    DEFAULT_FIELDS.to_owned()
}
fn default_meta_retry() -> Vec<String> {
    ["0s", "30s", "2m", "10m", "1h", "6h", "24h", "48h"].iter().map(|s| s.to_string()).collect()
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// Meta's Graph API, at a version current when this was written (configurable).
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com/v25.0";
/// Lead fields that need no ad permissions (the ad ids come with the notification).
pub const DEFAULT_FIELDS: &str =
    "id,created_time,form_id,field_data,custom_disclaimer_responses,is_organic,platform";

/// `[hubspot]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubspotFile {
    /// Properties holding epoch-millisecond dates, besides the names that say so.
    pub date_fields: Vec<String>,
}

/// How the Web-to-Lead endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebToLeadAnswer {
    /// 303 to the post's `retURL` (or `return_url`), like Salesforce; JSON when neither.
    #[default]
    Redirect,
    /// The JSON answer of `/v1/leads`.
    Json,
}

/// `[web_to_lead]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebToLeadFile {
    /// When set, only posts carrying this organization id (`oid`) are taken.
    pub oid: Option<String>,
    pub answer: WebToLeadAnswer,
    /// Where the browser goes when the post has no usable `retURL`.
    pub return_url: Option<String>,
    /// When not empty, `retURL` must be on one of these hosts (else `return_url` is used).
    pub return_hosts: Vec<String>,
    /// Custom field id (`00N…`, exact) → target (`postal_code`, `custom.budget`, …).
    pub fields: BTreeMap<String, String>,
    /// Also require the source's API key (server-to-server posts).
    pub require_key: bool,
}

/// How the LeadConduit endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeadconduitAnswer {
    /// `{"outcome": "success"|"failure"|"error", "reason", "lead": {"id"}, "price"}`.
    #[default]
    Leadconduit,
    /// The JSON answer of `/v1/leads`.
    Leadgate,
}

/// `[leadconduit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeadconduitFile {
    pub answer: LeadconduitAnswer,
    /// `price` answered for an accepted lead (0 when unset).
    pub price: Option<f64>,
    /// Also accept the source key as `?key=…` (for vendors that can change only a URL).
    pub key_in_url: bool,
}

/// A secret used in clear; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Compiled `[google_ads]`.
#[derive(Debug, Clone)]
pub struct GoogleAds {
    pub key: KeyHash,
}

/// Compiled `[meta]`.
#[derive(Debug, Clone)]
pub struct Meta {
    pub app_secret: Secret,
    pub verify_token: KeyHash,
    pub page_token: Option<Secret>,
    pub page_tokens: BTreeMap<String, Secret>,
    pub graph_url: reqwest::Url,
    pub fields: String,
    pub retry: RetryPolicy,
    pub egress: EgressPolicy,
    /// The guarded client for Graph API calls.
    pub client: reqwest::Client,
}

impl Meta {
    /// The token for `page_id`: its own, else the source's.
    pub fn token_for(&self, page_id: Option<&str>) -> Option<&Secret> {
        page_id.and_then(|p| self.page_tokens.get(p)).or(self.page_token.as_ref())
    }
}

/// Compiled `[web_to_lead]`.
#[derive(Debug, Clone)]
pub struct WebToLead {
    pub oid: Option<String>,
    pub answer: WebToLeadAnswer,
    pub return_url: Option<reqwest::Url>,
    pub return_hosts: Vec<String>,
    pub require_key: bool,
}

/// Compiled `[leadconduit]`.
#[derive(Debug, Clone)]
pub struct Leadconduit {
    pub answer: LeadconduitAnswer,
    pub price: f64,
    pub key_in_url: bool,
}

/// Every vendor endpoint a source has enabled.
#[derive(Debug, Clone, Default)]
pub struct VendorSettings {
    pub google_ads: Option<GoogleAds>,
    pub meta: Option<Meta>,
    pub hubspot: bool,
    pub web_to_lead: Option<WebToLead>,
    pub leadconduit: Option<Leadconduit>,
}

/// The vendor tables of one source file.
#[derive(Debug, Default)]
pub struct VendorFiles<'a> {
    pub google_ads: Option<&'a GoogleAdsFile>,
    pub meta: Option<&'a MetaFile>,
    pub hubspot: Option<&'a HubspotFile>,
    pub web_to_lead: Option<&'a WebToLeadFile>,
    pub leadconduit: Option<&'a LeadconduitFile>,
}

/// Compiles the vendor tables, pushing `(field, message)` for each problem.
pub fn compile(files: &VendorFiles<'_>, errs: &mut Vec<(String, String)>) -> VendorSettings {
    let mut out = VendorSettings { hubspot: files.hubspot.is_some(), ..VendorSettings::default() };
    if let Some(g) = files.google_ads {
        match KeyHash::from_config(&g.key) {
            Ok(key) => out.google_ads = Some(GoogleAds { key }),
            Err(e) => errs.push(("google_ads.key".into(), e)),
        }
    }
    if let Some(m) = files.meta {
        out.meta = compile_meta(m, errs);
    }
    if let Some(w) = files.web_to_lead {
        out.web_to_lead = compile_web_to_lead(w, errs);
    }
    if let Some(l) = files.leadconduit {
        let price = l.price.unwrap_or(0.0);
        if !price.is_finite() || price < 0.0 {
            errs.push(("leadconduit.price".into(), "must be a number of 0 or more".into()));
        }
        out.leadconduit = Some(Leadconduit { answer: l.answer, price, key_in_url: l.key_in_url });
    }
    out
}

fn secret(field: &str, s: &EnvString, errs: &mut Vec<(String, String)>) -> Option<Secret> {
    if !s.from_env() {
        errs.push((field.into(), "must be an ${ENV} reference, never written in the file".into()));
        return None;
    }
    if s.as_str().trim().is_empty() {
        errs.push((field.into(), "the environment variable it names is empty".into()));
        return None;
    }
    Some(Secret(s.as_str().to_owned()))
}

fn compile_meta(m: &MetaFile, errs: &mut Vec<(String, String)>) -> Option<Meta> {
    let before = errs.len();
    let app_secret = secret("meta.app_secret", &m.app_secret, errs);
    let verify_token =
        KeyHash::from_config(&m.verify_token).map_err(|e| errs.push(("meta.verify_token".into(), e))).ok();
    let page_token = m.page_token.as_ref().and_then(|t| secret("meta.page_token", t, errs));
    let page_tokens: BTreeMap<String, Secret> = m
        .page_tokens
        .iter()
        .filter_map(|(page, t)| {
            secret(&format!("meta.page_tokens.{page}"), t, errs).map(|s| (page.clone(), s))
        })
        .collect();
    if m.page_token.is_none() && m.page_tokens.is_empty() {
        errs.push((
            "meta".into(),
            "needs page_token (or page_tokens) to fetch leads from the Graph API".into(),
        ));
    }
    let graph_url = match reqwest::Url::parse(m.graph_url.as_str().trim_end_matches('/')) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        _ => {
            errs.push(("meta.graph_url".into(), format!("{:?} is not an http(s) URL", m.graph_url.as_str())));
            None
        }
    };
    if m.fields
        .split(',')
        .any(|f| f.trim().is_empty() || !f.trim().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        errs.push(("meta.fields".into(), "a comma-separated list of Graph API field names".into()));
    }
    let retry = RetryPolicy::parse(&m.retry).map_err(|e| errs.push(("meta.retry".into(), e))).ok();
    let egress =
        EgressPolicy::parse(&m.allow_private).map_err(|e| errs.push(("meta.allow_private".into(), e))).ok();
    let client = egress
        .as_ref()
        .and_then(|p| http_client(p, m.timeout).map_err(|e| errs.push(("meta".into(), e))).ok());
    if errs.len() > before {
        return None;
    }
    Some(Meta {
        app_secret: app_secret?,
        verify_token: verify_token?,
        page_token,
        page_tokens,
        graph_url: graph_url?,
        fields: m.fields.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        retry: retry?,
        egress: egress?,
        client: client?,
    })
}

/// A Salesforce custom field id: `00N` plus 12 or 15 id characters.
fn is_custom_field_id(id: &str) -> bool {
    (id.len() == 15 || id.len() == 18)
        && id.starts_with("00N")
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn compile_web_to_lead(w: &WebToLeadFile, errs: &mut Vec<(String, String)>) -> Option<WebToLead> {
    let before = errs.len();
    for (id, target) in &w.fields {
        if !is_custom_field_id(id) {
            errs.push((
                format!("web_to_lead.fields.{id:?}"),
                "not a Salesforce custom field id (00N… with 15 or 18 characters); map other names with [aliases]"
                    .into(),
            ));
        }
        if let Err(e) = Target::parse(target) {
            errs.push((format!("web_to_lead.fields.{id:?}"), e));
        }
    }
    let return_url = match &w.return_url {
        None => None,
        Some(u) => match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                errs.push(("web_to_lead.return_url".into(), format!("{u:?} is not an http(s) URL")));
                None
            }
        },
    };
    if errs.len() > before {
        return None;
    }
    Some(WebToLead {
        oid: w.oid.as_ref().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()),
        answer: w.answer,
        return_url,
        return_hosts: w.return_hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
        require_key: w.require_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_file(toml: &str) -> MetaFile {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn meta_secrets_must_come_from_the_environment() {
        let mut errs = Vec::new();
        let m = meta_file("app_secret = \"plain\"\nverify_token = \"also-plain\"\n");
        assert!(compile_meta(&m, &mut errs).is_none());
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["meta.app_secret", "meta.verify_token", "meta"]);
        assert!(format!("{:?}", Secret("s3cr3t".into())).contains('…'));
    }

    #[test]
    fn web_to_lead_fields_are_checked() {
        let mut errs = Vec::new();
        let w: WebToLeadFile =
            toml::from_str("fields = { \"00N5f00000Fxyz1\" = \"custom.budget\", \"zip\" = \"postal_code\", \"00N5f00000Fxyz2\" = \"nope\" }")
                .unwrap();
        assert!(compile_web_to_lead(&w, &mut errs).is_none());
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
