//! Routing: which buyers get an accepted lead, decided in the lead's own transaction.
//!
//! Planning is pure and runs before the commit (with the request's config snapshot):
//! the first route whose condition matches, its buyers that pass their filter, schedule
//! and enablement, in the strategy's order, each with its rendered payload. The store
//! then applies caps and round-robin state under the database's protection
//! ([`strategy::choose`]) and writes the deliveries into the outbox.

pub(crate) mod assign;
pub mod caps;
pub mod filter;
pub mod render;
pub mod schedule;
pub mod strategy;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::deliver::retry::RetryPolicy;
use crate::deliver::{EmailPayload, Payload, WebhookPayload};
use crate::lead::Lead;
use crate::score::Scoring;
use crate::submission::new_id;
use caps::Caps;
use filter::{Condition, Facts};
use render::{RenderContext, Templates};
use schedule::Schedule;

/// How a route picks among its eligible buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// One buyer, by priority (a waterfall: on reject, the next one).
    #[default]
    Exclusive,
    /// One buyer: the one that has waited longest since its last lead.
    RoundRobin,
    /// One buyer, drawn at random in proportion to the weights.
    Weighted,
    /// Up to `max_buyers` buyers, by priority.
    Shared,
}

/// What happens to a lead no buyer of the route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Kept as `unsold` (it can still be redelivered by hand).
    #[default]
    Unsold,
    /// Try the next matching route.
    NextRoute,
}

/// How a buyer's body is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
    Xml,
}

/// Where an ADF document goes in a buyer e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdfMode {
    #[default]
    None,
    Attachment,
    Body,
}

/// A webhook buyer's request shape.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub format: BodyFormat,
    /// Template name in [`Routing::templates`], when the buyer has its own body.
    pub template: Option<String>,
    pub content_type: String,
}

/// An e-mail buyer's message shape.
#[derive(Debug, Clone)]
pub struct EmailTarget {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Template names.
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub adf: AdfMode,
}

/// What a pull partner may see of an offer before claiming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Preview {
    /// City, state, ZIP prefix, product, score; names, e-mail and phone masked.
    #[default]
    Masked,
    /// Only product, score and age.
    Blind,
}

/// Which offer `claims/next` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOrder {
    /// Oldest offer first.
    #[default]
    Fifo,
    /// Highest score first (then oldest).
    Score,
}

/// A pull partner's terms.
#[derive(Debug, Clone)]
pub struct PullTarget {
    pub preview: Preview,
    /// How long a claim holds the lead before it must be confirmed.
    pub lease: std::time::Duration,
    pub claim_order: ClaimOrder,
}

/// When a buyer may return a lead it got (push or pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Returns {
    /// How long after delivery or claim a lead may be returned.
    pub window: std::time::Duration,
    /// Most returns per calendar month (the billing period), in the buyer's time zone.
    pub cap: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum Target {
    Webhook(WebhookTarget),
    Email(EmailTarget),
    Pull(PullTarget),
}

/// How a route offers leads to its pull partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferMode {
    /// Any eligible partner may claim at once.
    Open,
    /// Each partner in priority order gets `exclusive_for` alone, then it is open.
    ExclusiveFirst,
}

/// A route that offers to the pull pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullOffer {
    pub mode: OfferMode,
    pub exclusive_for: std::time::Duration,
    /// An offer nobody claims by then expires, and the route's fallback runs.
    pub ttl: std::time::Duration,
}

/// Service levels of a route: breaches are events (and show in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sla {
    /// Offers must be claimed within this.
    pub claim_within: Option<std::time::Duration>,
    /// Delivered or claimed leads must get a disposition within this.
    pub disposition_within: Option<std::time::Duration>,
}

/// A buyer, compiled from `buyers/<name>.toml`.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub name: String,
    pub enabled: bool,
    pub filter: Option<Condition>,
    pub price: Option<String>,
    /// The price in cents (spend caps count it).
    pub price_cents: i64,
    /// Lower is tried first.
    pub priority: i64,
    pub weight: u32,
    pub schedule: Schedule,
    pub caps: Caps,
    pub retry: RetryPolicy,
    pub returns: Returns,
    pub target: Target,
}

/// A route, compiled from `routes.toml`.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub when: Option<Condition>,
    pub buyers: Vec<String>,
    pub strategy: Strategy,
    pub max_buyers: usize,
    /// Exclusive routes: offer a rejected lead to the next buyer of the waterfall.
    pub next_on_reject: bool,
    pub fallback: Fallback,
    /// Set for routes that offer to the pull pool instead of pushing.
    pub pull: Option<PullOffer>,
    pub sla: Sla,
}

/// Buyers, routes, scoring and templates of one config snapshot.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    pub routes: Vec<Route>,
    pub buyers: BTreeMap<String, Arc<Buyer>>,
    pub scoring: Scoring,
    pub templates: Templates,
}

/// One buyer a plan may give the lead to, with everything needed to commit it.
#[derive(Debug, Clone)]
pub struct Offer {
    pub buyer: String,
    pub priority: i64,
    pub weight: u32,
    /// The cap counters this lead would use up (leads and spend).
    pub caps: Vec<caps::Counter>,
    pub delivery_id: String,
    /// What a push buyer is sent (`None` for pull partners: they fetch the lead).
    pub payload: Option<Payload>,
    pub price: Option<String>,
}

/// The buyers of one matching route, in the strategy's order.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub route: String,
    pub strategy: Strategy,
    pub max_buyers: usize,
    pub offers: Vec<Offer>,
    /// Buyers the route names that could not be offered the lead, with why.
    pub skipped: Vec<(String, String)>,
    /// A pull route: the lead is offered to `offers`' partners instead of pushed.
    pub pull: Option<PullOffer>,
}

/// Every route that may take the lead, in order (more than one only with
/// `fallback = "next_route"`).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub routes: Vec<RoutePlan>,
}

impl Plan {
    /// Every buyer the plan may touch (their counters and state are locked and read).
    pub fn buyers(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().flat_map(|r| r.offers.iter().map(|o| o.buyer.as_str()))
    }
}

/// The lead as routing sees it.
pub struct LeadView<'a> {
    pub lead: &'a Lead,
    pub lead_id: &'a str,
    pub source: &'a str,
    pub score: i64,
    pub grade: Option<&'a str>,
    pub received_at: i64,
}

impl Routing {
    /// Plans the routing of a lead at `now`, leaving out `exclude` (buyers already tried).
    pub fn plan(&self, view: &LeadView<'_>, now: i64, exclude: &[String]) -> Plan {
        self.plan_from(view, now, exclude, 0)
    }

    /// Plans with the routes after `route` only (an expired offer's fallback).
    pub fn plan_after(&self, route: &str, view: &LeadView<'_>, now: i64, exclude: &[String]) -> Plan {
        match self.routes.iter().position(|r| r.name == route) {
            Some(i) if self.routes[i].fallback == Fallback::NextRoute => {
                self.plan_from(view, now, exclude, i + 1)
            }
            _ => Plan::default(),
        }
    }

    fn plan_from(&self, view: &LeadView<'_>, now: i64, exclude: &[String], first: usize) -> Plan {
        if self.routes.len() <= first {
            return Plan::default();
        }
        let facts = Facts::new(view.lead, view.source, view.score, view.grade);
        self.plan_with(view, &facts, now, exclude, first)
    }

    /// Scores a new lead with the snapshot's rules and, if `routable`, plans its routing at
    /// its arrival: the lead's facts (its conversion to CEL values, most of a condition's
    /// cost) are built once for both, and not at all for a lead neither needs.
    pub fn score_and_plan(
        &self,
        lead: &Lead,
        lead_id: &str,
        source: &str,
        received_at: i64,
        routable: bool,
    ) -> (crate::score::Score, Plan) {
        let mut facts = None;
        let score = if self.scoring.has_rules() {
            self.scoring.score(facts.insert(Facts::new(lead, source, 0, None)))
        } else {
            self.scoring.grade(0)
        };
        if !routable || self.routes.is_empty() {
            return (score, Plan::default());
        }
        let view = LeadView {
            lead,
            lead_id,
            source,
            score: score.points,
            grade: score.grade.as_deref(),
            received_at,
        };
        let facts = match facts {
            Some(mut f) => {
                f.set_score(view.score, view.grade);
                f
            }
            None => Facts::new(lead, source, view.score, view.grade),
        };
        let plan = self.plan_with(&view, &facts, received_at, &[], 0);
        (score, plan)
    }

    fn plan_with(
        &self,
        view: &LeadView<'_>,
        facts: &Facts,
        now: i64,
        exclude: &[String],
        first: usize,
    ) -> Plan {
        let mut plan = Plan::default();
        for route in self.routes.iter().skip(first) {
            if !route.when.as_ref().is_none_or(|c| c.matches(facts)) {
                continue;
            }
            plan.routes.push(self.plan_route(route, view, facts, now, exclude));
            if route.fallback != Fallback::NextRoute {
                break;
            }
        }
        plan
    }

    fn plan_route(
        &self,
        route: &Route,
        view: &LeadView<'_>,
        facts: &Facts,
        now: i64,
        exclude: &[String],
    ) -> RoutePlan {
        let mut offers = Vec::new();
        let mut skipped = Vec::new();
        for name in &route.buyers {
            if exclude.contains(name) {
                continue;
            }
            let Some(buyer) = self.buyers.get(name) else {
                skipped.push((name.clone(), "not configured".into()));
                continue;
            };
            let why_not = if !buyer.enabled {
                Some("disabled in config")
            } else if !buyer.filter.as_ref().is_none_or(|f| f.matches(facts)) {
                Some("filter does not match")
            } else if !buyer.schedule.is_open(now) {
                Some("closed (schedule)")
            } else {
                None
            };
            if let Some(why) = why_not {
                skipped.push((name.clone(), why.into()));
                continue;
            }
            let payload = match &buyer.target {
                Target::Pull(_) => Ok(None),
                _ => self.payload(buyer, view).map(Some),
            };
            match payload {
                Ok(payload) => offers.push(Offer {
                    buyer: name.clone(),
                    priority: buyer.priority,
                    weight: buyer.weight,
                    caps: buyer.caps.counters(now, buyer.price_cents),
                    delivery_id: new_id(),
                    payload,
                    price: buyer.price.clone(),
                }),
                Err(e) => skipped.push((name.clone(), format!("template failed: {e}"))),
            }
        }
        // Priority order (stable: config order breaks ties) for the waterfall and shared.
        offers.sort_by_key(|o| o.priority);
        RoutePlan {
            route: route.name.clone(),
            strategy: route.strategy,
            max_buyers: route.max_buyers,
            offers,
            skipped,
            pull: route.pull,
        }
    }

    /// Renders what `buyer` is sent for this lead.
    pub fn payload(&self, buyer: &Buyer, view: &LeadView<'_>) -> Result<Payload, String> {
        let cx = RenderContext {
            lead: view.lead,
            lead_id: view.lead_id,
            source: view.source,
            score: view.score,
            grade: view.grade,
            buyer: &buyer.name,
            price: buyer.price.as_deref(),
            received_at: crate::clock::rfc3339(view.received_at),
        };
        match &buyer.target {
            Target::Webhook(w) => {
                let body = match (&w.template, w.format) {
                    (Some(t), _) => self.templates.render(t, &cx)?,
                    (None, BodyFormat::Json) => render::default_json(&cx),
                    (None, BodyFormat::Form) => render::default_form(&cx),
                    (None, BodyFormat::Xml) => render::default_xml(&cx),
                };
                Ok(Payload::WebhookV1(WebhookPayload {
                    method: w.method.clone(),
                    url: w.url.clone(),
                    headers: w.headers.clone(),
                    content_type: w.content_type.clone(),
                    body,
                }))
            }
            Target::Email(e) => {
                let adf = match e.adf {
                    AdfMode::None => None,
                    AdfMode::Attachment | AdfMode::Body => Some(crate::deliver::adf::render_adf(
                        view.lead,
                        view.lead_id,
                        &cx.received_at,
                        Some(view.source),
                        "leadgate",
                    )),
                };
                Ok(Payload::EmailV1(EmailPayload {
                    from: e.from.clone(),
                    to: e.to.clone(),
                    cc: e.cc.clone(),
                    subject: self.templates.render(&e.subject, &cx)?,
                    text: self.templates.render(&e.text, &cx)?,
                    html: e.html.as_ref().map(|h| self.templates.render(h, &cx)).transpose()?,
                    adf,
                    adf_body: e.adf == AdfMode::Body,
                }))
            }
            Target::Pull(_) => Err("a pull partner is not sent anything".into()),
        }
    }
}
