//! Every HTTP endpoint, in one table: the router is built from it and so is the OpenAPI
//! document ([`super::openapi`]), so a route cannot exist without being described.
//!
//! To add an endpoint, add a row here; nothing else mounts routes.

use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use super::{AppState, admin, health, openapi, partner, web};
use crate::intake::vendors::{google_ads, hubspot, leadconduit, meta, web_to_lead};

/// Which part of the API an endpoint belongs to (the OpenAPI tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Intake,
    Vendors,
    Partner,
    Admin,
    Health,
    /// The partner portal and operator console (HTML).
    Web,
    Docs,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Intake => "intake",
            Tag::Vendors => "vendors",
            Tag::Partner => "partner",
            Tag::Admin => "admin",
            Tag::Health => "health",
            Tag::Web => "web",
            Tag::Docs => "docs",
        }
    }
}

/// How a caller proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// A source's API key (`Authorization: Bearer` or `X-API-Key`).
    SourceKey,
    /// A buyer's (partner's) API key.
    BuyerKey,
    AdminKey,
    /// The vendor's own scheme, described in the summary (a body secret, a signature).
    Vendor,
    /// A browser session cookie from the portal's or console's sign-in; forms carry a CSRF token.
    Session,
}

/// A query parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    /// `string`, `integer`, `date-time` (RFC 3339) or `enum:a|b|c`.
    pub kind: &'static str,
    pub description: &'static str,
}

/// A query parameter row (a macro, so that `&[q!(..)]` is a `'static` constant).
macro_rules! q {
    ($name:literal, $kind:literal, $description:literal) => {
        Param { name: $name, kind: $kind, description: $description }
    };
}

/// What an endpoint reads from the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// A lead or leads, in any intake format.
    Lead,
    /// A JSON object.
    Json,
    /// A disposition report.
    Disposition,
    /// An HTML form (`application/x-www-form-urlencoded`).
    Form,
    /// The vendor's form post or JSON.
    FormOrJson,
}

/// One route.
pub struct Endpoint {
    pub method: Method,
    /// axum's path syntax, which is also OpenAPI's (`{name}`); `{*rest}` is a wildcard.
    pub path: &'static str,
    pub tag: Tag,
    pub auth: Auth,
    pub summary: &'static str,
    pub query: &'static [Param],
    pub body: Body,
    /// Status codes the endpoint answers with, and when.
    pub responses: &'static [(u16, &'static str)],
    /// Whether the answer is an HTML page (the web tag) rather than JSON.
    pub html: bool,
    pub handler: fn() -> MethodRouter<AppState>,
}

const AUTH_ERRORS: [(u16, &str); 2] = [(401, "Missing or unknown key."), (403, "The key may not do this.")];

macro_rules! responses {
    ($($code:literal => $text:literal),* $(,)?) => {
        &[$(($code, $text)),*]
    };
}

fn api(
    method: Method,
    path: &'static str,
    tag: Tag,
    auth: Auth,
    summary: &'static str,
    handler: fn() -> MethodRouter<AppState>,
) -> Endpoint {
    Endpoint {
        method,
        path,
        tag,
        auth,
        summary,
        query: &[],
        body: Body::None,
        responses: responses!(200 => "OK."),
        html: false,
        handler,
    }
}

fn page(
    method: Method,
    path: &'static str,
    summary: &'static str,
    handler: fn() -> MethodRouter<AppState>,
) -> Endpoint {
    let responses: &'static [(u16, &'static str)] = if method == Method::POST {
        responses!(303 => "Done: see the page named by Location.", 403 => "No session or a wrong CSRF token.")
    } else {
        responses!(200 => "The page.", 303 => "Not signed in: to the sign-in page.")
    };
    Endpoint {
        method: method.clone(),
        path,
        tag: Tag::Web,
        auth: Auth::Session,
        summary,
        query: &[],
        body: if method == Method::POST { Body::Form } else { Body::None },
        responses,
        html: true,
        handler,
    }
}

impl Endpoint {
    fn query(mut self, params: &'static [Param]) -> Self {
        self.query = params;
        self
    }
    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    fn responses(mut self, r: &'static [(u16, &'static str)]) -> Self {
        self.responses = r;
        self
    }
    fn public(mut self) -> Self {
        self.auth = Auth::Public;
        self
    }

    /// Every status the document lists: the endpoint's own plus the key errors.
    pub fn all_responses(&self) -> Vec<(u16, &'static str)> {
        let mut out = self.responses.to_vec();
        if matches!(self.auth, Auth::SourceKey | Auth::BuyerKey | Auth::AdminKey) {
            out.extend(AUTH_ERRORS);
        }
        out
    }
}

const HUBSPOT_FORM: &str = "/v1/sources/{source}/hubspot/submissions/v3/integration/submit/{portal}/{form}";
const HUBSPOT_SECURE: &str =
    "/v1/sources/{source}/hubspot/submissions/v3/integration/secure/submit/{portal}/{form}";

/// The whole table.
pub fn all() -> Vec<Endpoint> {
    use Auth::*;
    use Tag::*;
    let (g, p) = (Method::GET, Method::POST);
    vec![
        // Intake.
        api(p.clone(), "/v1/leads", Intake, SourceKey, "Submit one lead or a batch (JSON, form, XML, CSV, ADF), answered after commit.", || post(crate::intake::http::post_lead))
            .body(Body::Lead)
            .responses(responses!(201 => "Accepted (new leads).", 200 => "Duplicate or replayed answer.", 400 => "Unreadable body.", 413 => "Body over the limit.", 415 => "Unsupported content type.", 422 => "Rejected: the reasons name the fields.")),
        // Vendor endpoints.
        api(p.clone(), "/v1/sources/{source}/google-ads", Vendors, Vendor, "Google Ads lead form webhook (`google_key` in the body).", || post(google_ads::post))
            .body(Body::Json).responses(responses!(200 => "Always 200 with the outcome, as Google expects.", 401 => "Wrong google_key.", 404 => "No such endpoint for this source.")),
        api(g.clone(), "/v1/sources/{source}/meta", Vendors, Vendor, "Meta webhook verification (`hub.verify_token`).", || get(meta::verify))
            .query(&[q!("hub.mode", "string", "`subscribe`."), q!("hub.verify_token", "string", "The source's verify token."), q!("hub.challenge", "string", "Echoed back.")])
            .responses(responses!(200 => "The challenge.", 403 => "Wrong token.", 404 => "No such endpoint for this source.")),
        api(p.clone(), "/v1/sources/{source}/meta", Vendors, Vendor, "Meta leadgen notification (`X-Hub-Signature-256`); leads are fetched after.", || post(meta::notify))
            .body(Body::Json).responses(responses!(200 => "Stored.", 401 => "Bad signature.", 404 => "No such endpoint for this source.")),
        api(p.clone(), "/v1/sources/{source}/hubspot", Vendors, SourceKey, "HubSpot form submission (JSON).", || post(hubspot::post))
            .body(Body::Json).responses(responses!(200 => "HubSpot's answer shape.", 400 => "Unreadable.", 404 => "No such endpoint for this source.")),
        api(p.clone(), HUBSPOT_FORM, Vendors, SourceKey, "HubSpot Forms API v3 submit, at the same path shape.", || post(hubspot::post_form))
            .body(Body::Json).responses(responses!(200 => "HubSpot's answer shape.", 400 => "Unreadable.", 404 => "No such endpoint for this source.")),
        api(p.clone(), HUBSPOT_SECURE, Vendors, SourceKey, "HubSpot Forms API v3 secure submit.", || post(hubspot::post_form))
            .body(Body::Json).responses(responses!(200 => "HubSpot's answer shape.", 400 => "Unreadable.", 404 => "No such endpoint for this source.")),
        api(p.clone(), "/v1/sources/{source}/web-to-lead", Vendors, Vendor, "Salesforce Web-to-Lead form post (`oid`).", || post(web_to_lead::post))
            .body(Body::FormOrJson).responses(responses!(303 => "To retURL.", 200 => "JSON outcome without retURL.", 401 => "Wrong oid or key.", 404 => "No such endpoint for this source.")),
        api(p.clone(), "/v1/sources/{source}/leadconduit", Vendors, SourceKey, "LeadConduit-style post (key in a header, Basic or `?key=`).", || post(leadconduit::post))
            .query(&[q!("key", "string", "The source key, when the vendor can only put it in the URL.")])
            .body(Body::FormOrJson).responses(responses!(201 => "Success in LeadConduit's shape.", 200 => "Failure or duplicate in LeadConduit's shape.", 401 => "Missing or unknown key.", 404 => "No such endpoint for this source.")),
        // Partner API.
        api(g.clone(), "/v1/partner/offers", Partner, BuyerKey, "Open offers this partner may claim, previewed per its terms.", || get(partner::list_offers))
            .query(&[q!("order", "enum:newest|score", "`newest` (default) or `score`."), q!("limit", "integer", "1–500, default 50."), q!("offset", "integer", "Paging."), q!("product", "string", "Only this product."), q!("min_score", "integer", "Only this score or more."), q!("state", "string", "Only leads in this state.")])
            .responses(responses!(200 => "The offers and the next offset.", 400 => "Bad query.")),
        api(p.clone(), "/v1/partner/offers/{lead_id}/claim", Partner, BuyerKey, "Claim one offer: exactly one partner wins.", || post(partner::claim))
            .responses(responses!(200 => "Claimed: the whole lead and the lease.", 404 => "No such offer for this partner.", 409 => "Taken, not eligible yet, or a cap is reached.")),
        api(p.clone(), "/v1/partner/claims/next", Partner, BuyerKey, "Claim the best eligible offer.", || post(partner::claim_next))
            .responses(responses!(200 => "Claimed.", 204 => "Nothing to claim.")),
        api(p.clone(), "/v1/partner/claims/{lead_id}/confirm", Partner, BuyerKey, "Keep a claimed lead for good.", || post(partner::confirm))
            .responses(responses!(200 => "Confirmed.", 409 => "No live claim (the lease may have expired).")),
        api(p.clone(), "/v1/partner/leads/{lead_id}/disposition", Partner, BuyerKey, "Report what became of a claimed lead.", || post(partner::partner_disposition))
            .body(Body::Disposition).responses(responses!(201 => "Recorded.", 400 => "Unreadable.", 404 => "Not claimed by this partner.", 422 => "A reason is missing or a rule refused it.")),
        api(p.clone(), "/v1/deliveries/{delivery_id}/disposition", Partner, BuyerKey, "A push buyer reports on a lead delivered to it.", || post(partner::delivery_disposition))
            .body(Body::Disposition).responses(responses!(201 => "Recorded.", 400 => "Unreadable.", 404 => "Not delivered to this buyer.", 422 => "A reason is missing or a rule refused it.")),
        // Admin API.
        api(g.clone(), "/v1/leads/{id}", Admin, AdminKey, "A lead with its submission and whole history.", || get(admin::get_lead))
            .responses(responses!(200 => "The lead.", 404 => "No such lead.")),
        api(g.clone(), "/v1/admin/submissions", Admin, AdminKey, "Submissions, newest first.", || get(admin::list_submissions))
            .query(&[q!("status", "enum:processed|failed", "`processed` or `failed`."), q!("source", "string", "Only this source."), q!("limit", "integer", "Most rows (default 100).")]),
        api(g.clone(), "/v1/admin/submissions/{id}", Admin, AdminKey, "A submission with its raw body and leads.", || get(admin::get_submission))
            .responses(responses!(200 => "The submission.", 404 => "No such submission.")),
        api(p.clone(), "/v1/admin/submissions/{id}/replay", Admin, AdminKey, "Run a stored submission through the pipeline again.", || post(admin::replay_submission))
            .responses(responses!(201 => "Accepted.", 200 => "Duplicate.", 400 => "Unknown format.", 404 => "No such submission.", 422 => "Rejected.")),
        api(g.clone(), "/v1/admin/mailboxes", Admin, AdminKey, "Each IMAP consumer's state.", || get(admin::mailboxes)),
        api(g.clone(), "/v1/admin/leads", Admin, AdminKey, "Leads in a distribution stage, newest first.", || get(admin::leads_by_stage))
            .query(&[q!("stage", "string", "The stage, e.g. `needs_review`, `unsold`, `delivered` (required)."), q!("source", "string", "Only this source."), q!("limit", "integer", "Most rows (default 100).")])
            .responses(responses!(200 => "The leads.", 400 => "No stage given.")),
        api(g.clone(), "/v1/admin/review", Admin, AdminKey, "Leads held for review (template-free e-mail extraction only guessed their contacts).", || get(admin::review))
            .query(&[q!("source", "string", "Only this source."), q!("limit", "integer", "Most rows (default 100).")]),
        api(p.clone(), "/v1/admin/review/{lead_id}/release", Admin, AdminKey, "Route a lead held for review as it stands (keeps its id; its history shows `released`).", || post(admin::release_lead))
            .responses(responses!(200 => "Released: the lead's new stage.", 404 => "No such lead.", 409 => "The lead is not held for review.")),
        api(g.clone(), "/v1/admin/config", Admin, AdminKey, "The loaded config and the last reload's result.", || get(admin::config_status)),
        api(p.clone(), "/v1/admin/config/reload", Admin, AdminKey, "Reload the config tree (like SIGHUP).", || post(admin::reload_config))
            .responses(responses!(200 => "The new tree is in service.", 422 => "Refused: the problems.")),
        api(g.clone(), "/v1/admin/report", Admin, AdminKey, "The funnel per source and buyer over a period.", || get(admin::report))
            .query(&[q!("from", "date-time", "RFC 3339; default 30 days before `to`."), q!("to", "date-time", "RFC 3339; default now."), q!("format", "enum:json|csv", "`json` (default) or `csv`.")])
            .responses(responses!(200 => "The report.", 400 => "Bad period or format.")),
        api(g.clone(), "/v1/admin/buyers", Admin, AdminKey, "Buyers and those the outbox disabled.", || get(admin::buyers)),
        api(p.clone(), "/v1/admin/buyers/{name}/enable", Admin, AdminKey, "Lift a buyer's 410 disablement.", || post(admin::enable_buyer))
            .responses(responses!(200 => "Enabled.", 404 => "Not disabled.")),
        api(p.clone(), "/v1/admin/deliveries/{id}/redeliver", Admin, AdminKey, "Re-queue a dead-lettered or rejected delivery.", || post(admin::redeliver))
            .responses(responses!(200 => "Scheduled.", 404 => "No such dead or rejected delivery.")),
        api(g.clone(), "/v1/admin/meta/fetches", Admin, AdminKey, "Meta Graph API fetches, newest first.", || get(meta::list_fetches))
            .query(&[q!("source", "string", "Only this source."), q!("status", "string", "Only this status."), q!("limit", "integer", "Most rows.")]),
        api(p.clone(), "/v1/admin/meta/fetches/{id}/retry", Admin, AdminKey, "Retry a dead Meta fetch.", || post(meta::retry_fetch))
            .responses(responses!(200 => "Scheduled.", 404 => "No such fetch.")),
        // Health.
        api(g.clone(), "/healthz", Health, Public, "Liveness.", || get(health::healthz)),
        api(g.clone(), "/readyz", Health, Public, "Readiness: the store answers and the process is not stopping.", || get(health::readyz))
            .responses(responses!(200 => "Ready.", 503 => "Not ready.")),
        api(g.clone(), "/metrics", Health, Public, "Prometheus metrics: the admin key or a `[metrics]` key; without `[metrics]` keys, loopback clients need none.", || get(health::metrics))
            .responses(responses!(200 => "The metrics.", 401 => "A key is needed (or the one sent is unknown).", 403 => "A source or buyer key.")),
        // Docs.
        api(g.clone(), "/openapi.json", Docs, Public, "This document.", || get(openapi::document)),
        api(g.clone(), "/docs", Docs, Public, "The API docs page (Swagger UI).", || get(openapi::docs_index))
            .responses(responses!(303 => "To /docs/.")),
        api(g.clone(), "/docs/", Docs, Public, "The API docs page's start.", || get(openapi::docs_home)),
        api(g.clone(), "/docs/{*file}", Docs, Public, "The docs page's files.", || get(openapi::docs_file))
            .responses(responses!(200 => "The file.", 404 => "No such file.")),
        // The web pages.
        page(g.clone(), "/", "The start page: links to the portal and the console.", || get(web::home)).public(),
        page(g.clone(), "/static/{file}", "Style sheet and script of the pages.", || get(web::asset))
            .public().responses(responses!(200 => "The file.", 404 => "No such file.")),
        page(g.clone(), "/portal/login", "Partner sign-in page.", || get(web::portal::login_page))
            .public().responses(responses!(200 => "The page.")),
        page(p.clone(), "/portal/login", "Partner sign-in (the partner's API key).", || post(web::portal::login))
            .public().responses(responses!(303 => "Signed in: to the offers.", 401 => "Unknown key: the page again.", 403 => "Wrong CSRF token.")),
        page(p.clone(), "/portal/logout", "Sign out.", || post(web::portal::logout)),
        page(g.clone(), "/portal", "Open offers, masked, with their timers.", || get(web::portal::offers))
            .query(&[q!("order", "enum:newest|score", "`newest` (default) or `score`.")]),
        page(p.clone(), "/portal/claims/next", "Claim the best offer (the partner's claim order).", || post(web::portal::claim_next))
            .responses(responses!(303 => "Claimed: to the lead; or nothing to claim: to the offers.", 403 => "No session or a wrong CSRF token.")),
        page(p.clone(), "/portal/offers/{lead_id}/claim", "Claim an offer (the API's atomic claim).", || post(web::portal::claim))
            .responses(responses!(303 => "Claimed: to the lead.", 403 => "No session or a wrong CSRF token.", 409 => "Someone else took it (a page saying so).")),
        page(g.clone(), "/portal/leads/{lead_id}", "A lead this partner claimed, in full.", || get(web::portal::lead))
            .responses(responses!(200 => "The lead.", 303 => "Not signed in.", 404 => "Not claimed by this partner.")),
        page(p.clone(), "/portal/leads/{lead_id}/confirm", "Keep a claimed lead.", || post(web::portal::confirm)),
        page(p.clone(), "/portal/leads/{lead_id}/disposition", "Report contacted, converted or returned.", || post(web::portal::disposition)),
        page(g.clone(), "/portal/history", "This partner's claims and dispositions.", || get(web::portal::history)),
        page(g.clone(), "/console/login", "Operator sign-in page.", || get(web::console::login_page))
            .public().responses(responses!(200 => "The page.")),
        page(p.clone(), "/console/login", "Operator sign-in (the admin key).", || post(web::console::login))
            .public().responses(responses!(303 => "Signed in: to the dashboard.", 401 => "Unknown key: the page again.", 403 => "Wrong CSRF token.")),
        page(p.clone(), "/console/logout", "Sign out.", || post(web::console::logout)),
        page(g.clone(), "/console", "Counts per source and buyer, with charts.", || get(web::console::dashboard))
            .query(&[q!("period", "enum:hour|day|month", "`hour`, `day` (default) or `month` (30 days).")]),
        page(g.clone(), "/console/leads", "Lead search by e-mail, phone, vendor id or lead id.", || get(web::console::search))
            .query(&[q!("q", "string", "What to look for.")]),
        page(g.clone(), "/console/leads/{id}", "A lead's whole history on one page.", || get(web::console::lead))
            .responses(responses!(200 => "The lead.", 303 => "Not signed in.", 404 => "No such lead.")),
        page(g.clone(), "/console/dead-letters", "Dead-lettered and rejected deliveries.", || get(web::console::dead_letters)),
        page(p.clone(), "/console/deliveries/{id}/redeliver", "Re-queue a delivery.", || post(web::console::redeliver)),
        page(g.clone(), "/console/submissions", "Failed submissions.", || get(web::console::submissions)),
        page(p.clone(), "/console/submissions/{id}/replay", "Replay a submission.", || post(web::console::replay)),
        page(g.clone(), "/console/config", "The loaded config and the last reload.", || get(web::console::config)),
        page(p.clone(), "/console/config/reload", "Reload the config.", || post(web::console::reload)),
        page(g.clone(), "/console/channels", "Mailbox and file channel (FTP) state.", || get(web::console::channels)),
    ]
}
