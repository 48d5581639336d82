//! Assigning leads to buyers: the one place a routing decision is taken and written.
//!
//! First routing (a whole batch, in the writer's commit), a reroute after a buyer's
//! rejection and an expired offer's fallback all come here: load the buyers' caps and
//! round-robin state (the caller holds the buyers' locks), let the route's strategy choose,
//! turn each choice into deliveries, an offer or an `unsold` event, and write those and the
//! buyers' state back in the caller's transaction.

use std::collections::{BTreeSet, HashMap};

use super::strategy::{self, BuyerState, Choice, State};
use super::{LeadView, Offer, OfferMode, Plan};
use crate::deliver::attempt::Leased;
use crate::store::StoreError;
use crate::store::commit::{NewEvent, Stage, event};
use crate::store::outbox::StoredLead;
use crate::store::routing::{self, CounterRow, NewDelivery, NewOffer};
use crate::store::tx::Exec;

/// A lead to assign, with the plan it was matched to.
pub(crate) struct ToAssign<'a> {
    pub plan: &'a Plan,
    pub lead: LeadFacts<'a>,
}

/// What [`assign`] did.
pub(crate) struct Assigned {
    /// Each lead's new stage (routed, offered or unsold), in order.
    pub stages: Vec<Stage>,
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
    events: &mut Vec<NewEvent>,
) -> Result<Assigned, StoreError> {
    let mut state = load_state(tx, leads.iter().map(|l| l.plan)).await?;
    let mut writes = RouteWrites::default();
    let mut stages = Vec::with_capacity(leads.len());
    for l in leads {
        let choice = strategy::choose(l.plan, &mut state, crate::deliver::retry::random_unit());
        stages.push(apply(choice, l.plan, &l.lead, now, &mut writes, events)?);
    }
    save_state(tx, &state, now).await?;
    let leased = lease(writes.fresh.len());
    if let Some((owner, until)) = &leased {
        writes.lease_to(owner, *until);
    }
    let notify = !writes.deliveries.is_empty() && leased.is_none();
    routing::insert_deliveries(tx, writes.deliveries).await?;
    routing::insert_offers(tx, writes.offers).await?;
    if notify {
        routing::notify_outbox(tx).await?;
    }
    Ok(Assigned { stages, fresh: writes.fresh })
}

/// Reads counters and buyer state for every buyer (and counter key) of `plans`.
async fn load_state<'a>(
    tx: &mut impl Exec,
    plans: impl Iterator<Item = &'a Plan>,
) -> Result<State, StoreError> {
    let mut buyers = BTreeSet::new();
    let mut periods = BTreeSet::new();
    for plan in plans {
        for route in &plan.routes {
            for offer in &route.offers {
                buyers.insert(offer.buyer.clone());
                periods.extend(offer.caps.iter().map(|c| c.key.clone()));
            }
        }
    }
    let mut state = State { next_seq: 1, ..State::default() };
    let buyers: Vec<String> = buyers.into_iter().collect();
    let periods: Vec<String> = periods.into_iter().collect();
    for c in routing::load_counters(tx, &buyers, &periods).await? {
        state.counters.insert((c.buyer, c.period), c.count);
    }
    for b in routing::load_buyers(tx, &buyers).await? {
        state.next_seq = state.next_seq.max(b.assigned_seq + 1);
        state.buyers.insert(b.buyer, BuyerState { seq: b.assigned_seq, disabled: b.disabled });
    }
    Ok(state)
}

/// Writes back the counters and buyer state `choose` changed.
async fn save_state(tx: &mut impl Exec, state: &State, now: i64) -> Result<(), StoreError> {
    let counters: BTreeSet<&(String, String)> = state.touched_counters.iter().collect();
    let counters = counters
        .into_iter()
        .map(|key| CounterRow {
            buyer: key.0.clone(),
            period: key.1.clone(),
            count: state.counters.get(key).copied().unwrap_or(0),
        })
        .collect();
    routing::save_counters(tx, counters).await?;
    let buyers: BTreeSet<&String> = state.touched_buyers.iter().collect();
    let seqs = buyers.into_iter().map(|b| (b.clone(), state.buyers.get(b).map_or(0, |s| s.seq))).collect();
    routing::save_assigned(tx, seqs, now).await
}

/// Rows a routing decision writes (events go to the caller's list).
#[derive(Default)]
struct RouteWrites {
    deliveries: Vec<NewDelivery>,
    /// The deliveries as the outbox attempts them, one for each of `deliveries`.
    fresh: Vec<Leased>,
    offers: Vec<NewOffer>,
}

impl RouteWrites {
    /// Leases the new deliveries to `owner` until `until`, before they are written.
    fn lease_to(&mut self, owner: &str, until: i64) {
        for d in &mut self.deliveries {
            d.lease = Some((owner.to_string(), until));
        }
        for l in &mut self.fresh {
            l.lease_until = until;
        }
    }
}

/// Routes one stored lead again (after a buyer's rejection, when its offer expired);
/// returns its new stage.
pub(crate) async fn assign_one(
    tx: &mut impl Exec,
    plan: &Plan,
    lead: LeadFacts<'_>,
    now: i64,
    events: &mut Vec<NewEvent>,
) -> Result<Stage, StoreError> {
    let done = assign(tx, &[ToAssign { plan, lead }], now, |_| None, events).await?;
    Ok(done.stages.first().copied().unwrap_or(Stage::Unsold))
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
    events: &mut Vec<NewEvent>,
) -> Result<Stage, StoreError> {
    let Some(choice) = choice else {
        events.push(event(lead.lead_id, now, "unsold", unsold_detail(plan)));
        return Ok(Stage::Unsold);
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
        w.offers.push(NewOffer {
            lead_id: lead.lead_id.to_string(),
            route: choice.route.route.clone(),
            source: lead.source.to_string(),
            product: lead.product.map(str::to_string),
            score: lead.score,
            partners: partners.iter().map(|p| p.to_string()).collect(),
            exclusive_ms,
            open_at,
            expires_at,
            created_at: now,
        });
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
        return Ok(Stage::Offered);
    }
    for offer in &choice.offers {
        w.deliveries.push(delivery_row(lead.lead_id, &choice.route.route, offer, now)?);
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
    Ok(Stage::Routed)
}

/// The outbox row for a chosen push buyer.
fn delivery_row(lead_id: &str, route: &str, offer: &Offer, now: i64) -> Result<NewDelivery, StoreError> {
    let payload = offer
        .payload
        .as_ref()
        .ok_or_else(|| StoreError::Commit(format!("buyer {} has no payload to deliver", offer.buyer)))?;
    Ok(NewDelivery {
        id: offer.delivery_id.clone(),
        lead_id: lead_id.to_string(),
        buyer: offer.buyer.clone(),
        route: route.to_string(),
        payload: serde_json::to_string(payload)
            .map_err(|source| StoreError::Json { what: "payload", source })?,
        cap_periods: serde_json::to_string(&offer.caps)
            .map_err(|source| StoreError::Json { what: "caps", source })?,
        price: offer.price.clone(),
        created_at: now,
        lease: None,
    })
}

// A stored lead as routing sees it again (reroute, offer expiry). The store loads it; what
// routing reads of it is routing's business, hence this impl here.
impl StoredLead {
    pub(crate) fn view<'a>(&'a self, lead_id: &'a str) -> LeadView<'a> {
        LeadView {
            lead: &self.fields,
            lead_id,
            source: &self.source,
            score: self.score,
            grade: self.grade.as_deref(),
            received_at: self.created_at,
        }
    }

    pub(crate) fn facts<'a>(&'a self, lead_id: &'a str) -> LeadFacts<'a> {
        LeadFacts {
            lead_id,
            source: &self.source,
            product: self.fields.product.as_deref(),
            score: self.score,
        }
    }
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
