//! Assigning leads to buyers: the one place a routing decision is taken and written.
//!
//! First routing (a whole batch, in the writer's commit), a reroute after a buyer's
//! rejection and an expired offer's fallback all come here: load the buyers' caps and
//! round-robin state (the caller holds the buyers' locks), let the route's strategy choose,
//! turn each choice into deliveries, an offer or an `unsold` event, and write those and the
//! buyers' state back in the caller's transaction.

use std::collections::HashMap;

use super::strategy::{self, Choice};
use super::{OfferMode, Plan};
use crate::store::StoreError;
use crate::store::commit::{Arg, event};
use crate::store::outbox::Leased;
use crate::store::routing::{self, RouteWrites};
use crate::store::tx::Exec;

/// A lead to assign, with the plan it was matched to.
pub(crate) struct ToAssign<'a> {
    pub plan: &'a Plan,
    pub lead: LeadFacts<'a>,
}

/// What [`assign`] did.
pub(crate) struct Assigned {
    /// Each lead's new stage (`routed`, `offered` or `unsold`), in order.
    pub stages: Vec<&'static str>,
    /// The deliveries created, as the outbox attempts them.
    pub fresh: Vec<Leased>,
}

/// Chooses buyers for `leads` in order and writes the result. `lease` is asked, once the
/// deliveries are known, whether to lease them to an owner until a time before they are
/// written (the writer's in-memory hand-over to this instance's outbox).
pub(crate) async fn assign(
    tx: &mut impl Exec,
    leads: &[ToAssign<'_>],
    now: i64,
    lease: impl FnOnce(usize) -> Option<(String, i64)>,
    events: &mut Vec<Vec<Arg>>,
) -> Result<Assigned, StoreError> {
    let mut state = routing::load_state(tx, leads.iter().map(|l| l.plan)).await?;
    let mut writes = RouteWrites::default();
    let mut stages = Vec::with_capacity(leads.len());
    for l in leads {
        let choice = strategy::choose(l.plan, &mut state, crate::deliver::retry::random_unit());
        stages.push(apply(choice, l.plan, &l.lead, now, &mut writes, events)?);
    }
    routing::save_state(tx, &state, now).await?;
    if let Some((owner, until)) = lease(writes.fresh.len()) {
        writes.lease_to(&owner, until);
    }
    let fresh = std::mem::take(&mut writes.fresh);
    routing::write(tx, writes).await?;
    Ok(Assigned { stages, fresh })
}

/// Routes one stored lead again (after a buyer's rejection, when its offer expired);
/// returns its new stage.
pub(crate) async fn assign_one(
    tx: &mut impl Exec,
    plan: &Plan,
    lead: LeadFacts<'_>,
    now: i64,
    events: &mut Vec<Vec<Arg>>,
) -> Result<&'static str, StoreError> {
    let done = assign(tx, &[ToAssign { plan, lead }], now, |_| None, events).await?;
    Ok(done.stages.first().copied().unwrap_or("unsold"))
}

/// What the pool needs to know about a lead it is offered.
pub(crate) struct LeadFacts<'a> {
    pub lead_id: &'a str,
    pub source: &'a str,
    pub product: Option<&'a str>,
    pub score: i64,
}

/// Turns a choice (or none) into outbox rows, an offer or an `unsold` event; returns the
/// lead's new stage.
fn apply(
    choice: Option<Choice<'_>>,
    plan: &Plan,
    lead: &LeadFacts<'_>,
    now: i64,
    w: &mut RouteWrites,
    events: &mut Vec<Vec<Arg>>,
) -> Result<&'static str, StoreError> {
    let Some(choice) = choice else {
        events.push(event(lead.lead_id, now, "unsold", unsold_detail(plan)));
        return Ok("unsold");
    };
    if let Some(pull) = choice.route.pull {
        let partners: Vec<&str> = choice.offers.iter().map(|o| o.buyer.as_str()).collect();
        let exclusive_ms = match pull.mode {
            OfferMode::Open => 0,
            OfferMode::ExclusiveFirst => {
                i64::try_from(pull.exclusive_for.as_millis()).unwrap_or(i64::MAX / 4)
            }
        };
        let open_at = now.saturating_add(exclusive_ms.saturating_mul(partners.len() as i64));
        let expires_at = now.saturating_add(i64::try_from(pull.ttl.as_millis()).unwrap_or(i64::MAX / 4));
        w.offers.push(routing::offer_row(
            lead.lead_id,
            &choice.route.route,
            lead.source,
            lead.product,
            lead.score,
            &partners,
            exclusive_ms,
            open_at,
            expires_at,
            now,
        )?);
        events.push(event(
            lead.lead_id,
            now,
            "offered",
            serde_json::json!({
                "route": choice.route.route, "mode": pull.mode, "partners": partners,
                "open_at": crate::clock::rfc3339(open_at), "expires_at": crate::clock::rfc3339(expires_at),
                "skipped": skipped(choice.route.skipped.iter()),
            }),
        ));
        return Ok("offered");
    }
    for offer in &choice.offers {
        w.deliveries.push(routing::delivery_row(lead.lead_id, &choice.route.route, offer, now)?);
        if let Some(payload) = &offer.payload {
            w.fresh.push(Leased {
                id: offer.delivery_id.clone(),
                lead_id: lead.lead_id.to_string(),
                buyer: offer.buyer.clone(),
                route: choice.route.route.clone(),
                payload: payload.clone(),
                attempts: 0,
                lease_until: 0,
                cap_periods: offer.caps.clone(),
            });
        }
    }
    events.push(event(lead.lead_id, now, "routed", routed_detail(&choice)));
    Ok("routed")
}

/// The `routed` event detail for a choice.
pub(crate) fn routed_detail(choice: &Choice<'_>) -> serde_json::Value {
    serde_json::json!({
        "route": choice.route.route,
        "strategy": choice.route.strategy,
        "buyers": choice.offers.iter().map(|o| o.buyer.as_str()).collect::<Vec<_>>(),
        "deliveries": choice.offers.iter().map(|o| o.delivery_id.as_str()).collect::<Vec<_>>(),
        "skipped": skipped(choice.route.skipped.iter()),
    })
}

/// The `unsold` event detail for a plan nobody took.
pub(crate) fn unsold_detail(plan: &Plan) -> serde_json::Value {
    if plan.routes.is_empty() {
        return serde_json::json!({ "reason": "no route matches" });
    }
    serde_json::json!({
        "reason": "no buyer available",
        "routes": plan.routes.iter().map(|r| serde_json::json!({
            "route": r.route,
            "offered": r.offers.iter().map(|o| o.buyer.as_str()).collect::<Vec<_>>(),
            "skipped": skipped(r.skipped.iter()),
        })).collect::<Vec<_>>(),
    })
}

fn skipped<'a>(list: impl Iterator<Item = &'a (String, String)>) -> HashMap<&'a str, &'a str> {
    list.map(|(b, why)| (b.as_str(), why.as_str())).collect()
}
