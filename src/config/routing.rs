//! `routes.toml` and `buyers/*.toml`: file shapes and their compilation into
//! [`Routing`](crate::route::Routing).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::env::EnvString;
use super::{ConfigProblem, duration, files, problem, valid_name};
use crate::auth::{KeyHash, Keyring, Principal};
use crate::deliver::Delivery;
use crate::deliver::email::{EmailDelivery, SmtpConfig};
use crate::deliver::http_client::{EgressPolicy, http_client};
use crate::deliver::retry::RetryPolicy;
use crate::deliver::sign::WebhookSecret;
use crate::deliver::webhook::WebhookDelivery;
use crate::deliver::webhook::response::ResponseRules;
use crate::route::caps::{Caps, CapsConfig};
use crate::route::filter::Condition;
use crate::route::render::Templates;
use crate::route::schedule::{Schedule, ScheduleConfig};
use crate::route::{
    AdfMode, BodyFormat, Buyer, ClaimOrder, EmailTarget, Fallback, OfferMode, Preview, PullOffer, PullTarget,
    Returns, Route, Routing, Sla, Strategy, Target, WebhookTarget,
};
use crate::score::{Scoring, ScoringFile};

/// `routes.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesFile {
    /// Routes in the order they are tried.
    pub route: Vec<RouteFile>,
    pub scoring: ScoringFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    /// CEL condition on the lead (absent: every lead). Spanned, so that a compile error
    /// points at the file's line and column.
    #[serde(default)]
    pub when: Option<toml::Spanned<String>>,
    /// Buyers (file names under `buyers/`).
    pub buyers: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// `shared`: sell to up to this many buyers.
    #[serde(default)]
    pub max_buyers: Option<usize>,
    /// `exclusive`: what a buyer's rejection does: `next` buyer (default) or `stop`.
    #[serde(default)]
    pub on_reject: OnReject,
    /// When no buyer takes the lead (or, for a pull route, nobody claims the offer in
    /// time): `unsold` or `next_route`.
    #[serde(default)]
    pub fallback: Fallback,
    /// Offer to the pull pool instead of pushing: `open` or `exclusive_first`.
    #[serde(default)]
    pub offer: Option<OfferMode>,
    /// `exclusive_first`: how long each partner has the offer alone.
    #[serde(default = "ten_minutes", deserialize_with = "duration::de")]
    pub exclusive_for: Duration,
    /// How long an unclaimed offer stays in the pool.
    #[serde(default = "one_day", deserialize_with = "duration::de")]
    pub offer_ttl: Duration,
    #[serde(default)]
    pub sla: SlaFile,
}

fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn one_day() -> Duration {
    Duration::from_secs(86_400)
}

/// `[route.sla]`: breaches become `sla_breach` events and show in reports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaFile {
    /// Offers must be claimed within this.
    #[serde(deserialize_with = "duration::opt")]
    pub claim_within: Option<Duration>,
    /// Delivered or claimed leads must get a disposition within this.
    #[serde(deserialize_with = "duration::opt")]
    pub disposition_within: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnReject {
    #[default]
    Next,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    Webhook,
    Email,
    /// A partner that claims leads on the partner API.
    Pull,
}

/// `buyers/<name>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `webhook` or `email`.
    pub delivery: DeliveryKind,
    /// CEL condition: only matching leads are offered to this buyer (spanned, as `when`).
    #[serde(default)]
    pub filter: Option<toml::Spanned<String>>,
    /// Price per lead (reported with deliveries and available to templates).
    #[serde(default)]
    pub price: Option<f64>,
    /// Lower is tried first in waterfalls and shared routes.
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Relative share in `weighted` routes.
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub webhook: Option<WebhookFile>,
    #[serde(default)]
    pub email: Option<EmailFile>,
    #[serde(default)]
    pub caps: Option<CapsConfig>,
    #[serde(default)]
    pub schedule: Option<ScheduleConfig>,
    #[serde(default)]
    pub retry: RetryFile,
    /// API keys (`sha256:…` or `${ENV}`): required for pull partners, optional for push
    /// buyers (who use them to report dispositions).
    #[serde(default)]
    pub keys: Vec<EnvString>,
    #[serde(default)]
    pub pull: Option<PullFile>,
    #[serde(default)]
    pub returns: ReturnsFile,
}

/// `[returns]`: when the buyer may send a lead back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnsFile {
    /// How long after delivery (or claim) a lead may be returned.
    #[serde(deserialize_with = "duration::de")]
    pub window: Duration,
    /// Most returns per calendar month, counted in the buyer's time zone.
    pub cap: Option<u32>,
}

impl Default for ReturnsFile {
    fn default() -> Self {
        Self { window: Duration::from_secs(7 * 86_400), cap: None }
    }
}

/// `[pull]`: a partner's terms.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullFile {
    /// What the partner sees before claiming: `masked` or `blind`.
    pub preview: Preview,
    /// How long a claim holds the lead until it is confirmed.
    #[serde(deserialize_with = "duration::de")]
    pub lease: Duration,
    /// `claims/next` order: `fifo` or `score`.
    pub claim_order: ClaimOrder,
}

impl Default for PullFile {
    fn default() -> Self {
        Self { preview: Preview::Masked, lease: Duration::from_secs(15 * 60), claim_order: ClaimOrder::Fifo }
    }
}

fn yes() -> bool {
    true
}
fn default_priority() -> i64 {
    100
}
fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub url: EnvString,
    #[serde(default = "post")]
    pub method: String,
    /// Body without a template: `json` (default), `form` or `xml`.
    #[serde(default)]
    pub format: BodyFormat,
    /// A minijinja template for the body (values auto-escaped for JSON/XML formats).
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// Standard Webhooks secret (`whsec_…`); `secrets` holds two during a rotation.
    #[serde(default)]
    pub secret: Option<EnvString>,
    #[serde(default)]
    pub secrets: Vec<EnvString>,
    #[serde(default = "ten_seconds", deserialize_with = "duration::de")]
    pub timeout: Duration,
    /// Private/loopback ranges this buyer may be reached on (SSRF guard exceptions).
    #[serde(default)]
    pub allow_private: Vec<String>,
    #[serde(default)]
    pub response: ResponseFile,
}

fn post() -> String {
    "POST".into()
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseFile {
    /// A 2xx answer matching this rule is a rejection (`$.status == "rejected"`, `/r/status = 'no'`, `regex:…`).
    pub reject_if: Option<String>,
    /// When set, a 2xx answer must match it to count as accepted.
    pub accept_if: Option<String>,
    /// Where the buyer's reason is (`$.message`).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFile {
    pub smtp: SmtpConfig,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    /// minijinja templates.
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default = "default_text")]
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    /// ADF/XML: `none`, `attachment` (lead.xml) or `body`.
    #[serde(default)]
    pub adf: AdfMode,
}

fn default_subject() -> String {
    "New lead {{ lead_id }} from {{ source }}".into()
}
fn default_text() -> String {
    "Lead {{ lead_id }} ({{ source }})\n\
     Name: {{ lead.first_name }} {{ lead.last_name }}\n\
     E-mail: {{ lead.email }}\nPhone: {{ lead.phone }}\n\
     Address: {{ lead.street }}, {{ lead.city }}, {{ lead.state }} {{ lead.postal_code }}\n\
     Product: {{ lead.product }}\nComments: {{ lead.comments }}\n"
        .into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryFile {
    /// Delays before each attempt, the first normally "0s".
    pub schedule: Vec<String>,
}

impl Default for RetryFile {
    fn default() -> Self {
        Self { schedule: crate::deliver::retry::default_schedule_strings() }
    }
}

/// A buyer's transport, ready to use.
#[derive(Clone)]
pub struct DeliveryHandle(pub Arc<dyn Delivery>);

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryHandle")
    }
}

/// Loads `buyers/` and `routes.toml` under `dir`; buyer keys go to `keys`.
pub fn load(
    dir: &Path,
    problems: &mut Vec<ConfigProblem>,
    keys: &mut Keyring,
    warnings: &mut Vec<String>,
) -> (Routing, BTreeMap<String, DeliveryHandle>) {
    let mut routing = Routing::default();
    let mut deliveries = BTreeMap::new();
    let mut templates = Templates::default();

    for path in files::toml_files(&dir.join("buyers"), problems) {
        let Some(file) = files::read::<BuyerFile>(&path, problems) else { continue };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let name = file.name.clone().unwrap_or(stem);
        if !valid_name(&name) {
            problems.push(problem(&path, Some("name".into()), format!("invalid buyer name {name:?}")));
            continue;
        }
        if routing.buyers.contains_key(&name) {
            problems.push(problem(&path, Some("name".into()), format!("buyer {name:?} is defined twice")));
            continue;
        }
        for (i, k) in file.keys.iter().enumerate() {
            match KeyHash::from_config(k) {
                Ok(h) => keys.add(h, Principal::Buyer(name.clone())),
                Err(e) => problems.push(problem(&path, Some(format!("keys[{i}]")), e)),
            }
            if let Some(var) = k.defaulted_var() {
                warnings.push(format!("Buyer {name} accepts the example default key: set {var}."));
            }
        }
        if file.delivery == DeliveryKind::Pull && file.keys.is_empty() {
            problems.push(problem(&path, Some("keys".into()), "a pull partner needs at least one API key"));
        }
        match compile_buyer(&name, &file, &mut templates) {
            Ok((buyer, delivery)) => {
                routing.buyers.insert(name.clone(), Arc::new(buyer));
                if let Some(d) = delivery {
                    deliveries.insert(name, d);
                }
            }
            Err(errs) => problems.extend(errs.into_iter().map(|(f, m)| match &file.filter {
                Some(expr) if f == "filter" => files::cel_problem(&path, f, expr.span(), &m),
                _ => problem(&path, Some(f), m),
            })),
        }
    }

    let routes_path = dir.join("routes.toml");
    if routes_path.exists()
        && let Some(file) = files::read::<RoutesFile>(&routes_path, problems)
    {
        match Scoring::compile(&file.scoring) {
            Ok(s) => routing.scoring = s,
            Err(errs) => problems.extend(errs.into_iter().map(|(f, m)| problem(&routes_path, Some(f), m))),
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in file.route.iter().enumerate() {
            let field = |f: &str| Some(format!("route[{i}] ({}).{f}", r.name));
            if !names.insert(r.name.clone()) {
                problems.push(problem(&routes_path, field("name"), "route name used twice"));
            }
            let when = match r.when.as_ref().map(|w| Condition::compile(w.get_ref())).transpose() {
                Ok(c) => c,
                Err(e) => {
                    let (when, span) = (field("when").unwrap_or_default(), r.when.as_ref().map(|w| w.span()));
                    problems.push(match span {
                        Some(span) => files::cel_problem(&routes_path, when, span, &e),
                        None => problem(&routes_path, Some(when), e),
                    });
                    None
                }
            };
            for b in &r.buyers {
                if !routing.buyers.contains_key(b) {
                    problems.push(problem(&routes_path, field("buyers"), format!("unknown buyer {b:?}")));
                }
            }
            if r.buyers.is_empty() {
                problems.push(problem(&routes_path, field("buyers"), "a route needs at least one buyer"));
            }
            if r.max_buyers.is_some() && r.strategy != Strategy::Shared {
                problems.push(problem(
                    &routes_path,
                    field("max_buyers"),
                    "only `shared` routes sell to several buyers",
                ));
            }
            routing.routes.push(Route {
                name: r.name.clone(),
                when,
                buyers: r.buyers.clone(),
                strategy: r.strategy,
                max_buyers: r.max_buyers.unwrap_or(1).max(1),
                next_on_reject: r.on_reject == OnReject::Next,
                fallback: r.fallback,
                pull: r.offer.map(|mode| PullOffer {
                    mode,
                    exclusive_for: r.exclusive_for,
                    ttl: r.offer_ttl,
                }),
                sla: Sla { claim_within: r.sla.claim_within, disposition_within: r.sla.disposition_within },
            });
        }
    }
    routing.templates = templates;
    (routing, deliveries)
}

type Errors = Vec<(String, String)>;

fn compile_buyer(
    name: &str,
    f: &BuyerFile,
    templates: &mut Templates,
) -> Result<(Buyer, Option<DeliveryHandle>), Errors> {
    let mut errs: Errors = Vec::new();
    let filter = match f.filter.as_ref().map(|c| Condition::compile(c.get_ref())).transpose() {
        Ok(c) => c,
        Err(e) => {
            errs.push(("filter".into(), e));
            None
        }
    };
    let schedule = match &f.schedule {
        None => Schedule::always(),
        Some(s) => Schedule::compile(s).unwrap_or_else(|e| {
            errs.push(("schedule".into(), e));
            Schedule::always()
        }),
    };
    let tz = f
        .schedule
        .as_ref()
        .and_then(|s| s.timezone.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::Tz::UTC);
    let caps = match Caps::compile(f.caps.as_ref().unwrap_or(&CapsConfig::default()), tz) {
        Ok(c) => c,
        Err(e) => {
            errs.push(("caps".into(), e));
            return Err(errs);
        }
    };
    let retry = RetryPolicy::parse(&f.retry.schedule).unwrap_or_else(|e| {
        errs.push(("retry.schedule".into(), e));
        RetryPolicy::default()
    });

    let built = match (f.delivery, &f.webhook, &f.email, &f.pull) {
        (DeliveryKind::Webhook, Some(w), None, None) => {
            webhook(name, w, templates).map(|(t, d)| (t, Some(d)))
        }
        (DeliveryKind::Email, None, Some(e), None) => email(name, e, templates).map(|(t, d)| (t, Some(d))),
        (DeliveryKind::Pull, None, None, p) => {
            let d = PullFile::default();
            let p = p.as_ref().unwrap_or(&d);
            Ok((
                Target::Pull(PullTarget { preview: p.preview, lease: p.lease, claim_order: p.claim_order }),
                None,
            ))
        }
        (DeliveryKind::Webhook, ..) => Err(vec![(
            "webhook".into(),
            "a webhook buyer needs a [webhook] section and no [email]/[pull]".into(),
        )]),
        (DeliveryKind::Email, ..) => Err(vec![(
            "email".into(),
            "an e-mail buyer needs an [email] section and no [webhook]/[pull]".into(),
        )]),
        (DeliveryKind::Pull, ..) => {
            Err(vec![("pull".into(), "a pull partner has no [webhook] or [email] section".into())])
        }
    };
    let (target, delivery) = match built {
        Ok(t) => t,
        Err(mut e) => {
            errs.append(&mut e);
            return Err(errs);
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let buyer = Buyer {
        name: name.to_string(),
        enabled: f.enabled,
        filter,
        price: f.price.map(|p| format!("{p:.2}")),
        price_cents: f.price.map_or(0, |p| (p * 100.0).round() as i64),
        priority: f.priority,
        weight: f.weight,
        schedule,
        caps,
        retry,
        returns: Returns { window: f.returns.window, cap: f.returns.cap },
        target,
    };
    Ok((buyer, delivery))
}

fn webhook(
    name: &str,
    w: &WebhookFile,
    templates: &mut Templates,
) -> Result<(Target, DeliveryHandle), Errors> {
    let mut errs: Errors = Vec::new();
    let url = w.url.as_str().to_string();
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => errs.push(("webhook.url".into(), format!("scheme {:?} is not http or https", u.scheme()))),
        Err(e) => errs.push(("webhook.url".into(), format!("{url:?} is not a URL: {e}"))),
    }
    let method = w.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "GET") {
        errs.push(("webhook.method".into(), format!("{method:?} is not POST, PUT, PATCH or GET")));
    }
    let ext = match w.format {
        BodyFormat::Json => "json",
        BodyFormat::Form => "txt",
        BodyFormat::Xml => "xml",
    };
    let template = match &w.template {
        Some(src) => {
            let tname = format!("buyers/{name}/body.{ext}");
            if let Err(e) = templates.add(&tname, src) {
                errs.push(("webhook.template".into(), e));
            }
            Some(tname)
        }
        None => None,
    };
    let mut secrets = Vec::new();
    for (i, s) in w.secret.iter().chain(w.secrets.iter()).enumerate() {
        match WebhookSecret::parse(s.as_str()) {
            Ok(k) => secrets.push(k),
            Err(e) => errs.push((format!("webhook.secret[{i}]"), e.to_string())),
        }
    }
    let policy = EgressPolicy::parse(&w.allow_private).unwrap_or_else(|e| {
        errs.push(("webhook.allow_private".into(), e));
        EgressPolicy::default()
    });
    let rules = ResponseRules::compile(
        w.response.reject_if.as_deref(),
        w.response.accept_if.as_deref(),
        w.response.reason.as_deref(),
    )
    .unwrap_or_else(|e| {
        errs.push(("webhook.response".into(), e));
        ResponseRules::default()
    });
    let client = http_client(&policy, w.timeout).map_err(|e| vec![("webhook".to_string(), e)])?;
    if !errs.is_empty() {
        return Err(errs);
    }
    let content_type = w.content_type.clone().unwrap_or_else(|| {
        match w.format {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Xml => "application/xml",
        }
        .to_string()
    });
    let target = Target::Webhook(WebhookTarget {
        method,
        url,
        headers: w.headers.iter().map(|(k, v)| (k.clone(), v.as_str().to_string())).collect(),
        format: w.format,
        template,
        content_type,
    });
    let delivery = WebhookDelivery::new(client, policy, secrets, rules);
    Ok((target, DeliveryHandle(Arc::new(delivery))))
}

fn email(name: &str, e: &EmailFile, templates: &mut Templates) -> Result<(Target, DeliveryHandle), Errors> {
    let mut errs: Errors = Vec::new();
    let mut add = |part: &str, ext: &str, src: &str| {
        let tname = format!("buyers/{name}/{part}.{ext}");
        if let Err(err) = templates.add(&tname, src) {
            errs.push((format!("email.{part}"), err));
        }
        tname
    };
    let subject = add("subject", "txt", &e.subject);
    let text = add("text", "txt", &e.text);
    let html = e.html.as_deref().map(|h| add("html", "html", h));
    if e.to.is_empty() {
        errs.push(("email.to".into(), "at least one recipient is needed".into()));
    }
    let delivery = EmailDelivery::new(e.smtp.clone()).map_err(|err| vec![("email.smtp".to_string(), err)])?;
    if !errs.is_empty() {
        return Err(errs);
    }
    let target = Target::Email(EmailTarget {
        from: e.from.clone(),
        to: e.to.clone(),
        cc: e.cc.clone(),
        subject,
        text,
        html,
        adf: e.adf,
    });
    Ok((target, DeliveryHandle(Arc::new(delivery))))
}

/// The webhook transport of a source's closed-loop relay.
pub fn closed_loop_delivery(c: &super::files::ClosedLoopFile) -> Result<DeliveryHandle, Errors> {
    let mut errs: Errors = Vec::new();
    match reqwest::Url::parse(c.url.as_str()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => errs.push(("closed_loop.url".into(), format!("{:?} is not an http(s) URL", c.url.as_str()))),
    }
    let secrets = match c.secret.as_ref().map(|s| WebhookSecret::parse(s.as_str())).transpose() {
        Ok(s) => s.into_iter().collect(),
        Err(e) => {
            errs.push(("closed_loop.secret".into(), e.to_string()));
            Vec::new()
        }
    };
    let policy = EgressPolicy::parse(&c.allow_private).unwrap_or_else(|e| {
        errs.push(("closed_loop.allow_private".into(), e));
        EgressPolicy::default()
    });
    if !errs.is_empty() {
        return Err(errs);
    }
    let client = http_client(&policy, c.timeout).map_err(|e| vec![("closed_loop".to_string(), e)])?;
    Ok(DeliveryHandle(Arc::new(WebhookDelivery::new(client, policy, secrets, ResponseRules::default()))))
}
