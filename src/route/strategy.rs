//! Choosing buyers from a plan, given the counters and round-robin state read (under
//! lock) from the store. Pure: the store loads [`State`], calls [`choose`], and writes
//! back what changed, all in one transaction.

use std::collections::HashMap;

use super::{Offer, Plan, RoutePlan, Strategy};

/// Per-buyer routing state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuyerState {
    /// Round-robin order: the buyer with the lowest value has waited longest.
    pub seq: i64,
    /// Disabled by the outbox (e.g. its endpoint answered 410).
    pub disabled: bool,
}

/// Counters and buyer state as of this transaction, updated by [`choose`].
#[derive(Debug, Clone, Default)]
pub struct State {
    /// `(buyer, counter key)` → leads counted.
    pub counters: HashMap<(String, String), i64>,
    pub buyers: HashMap<String, BuyerState>,
    /// The next round-robin sequence number to hand out.
    pub next_seq: i64,
    /// What changed, for the store to write back.
    pub touched_counters: Vec<(String, String)>,
    pub touched_buyers: Vec<String>,
}

impl State {
    fn under_caps(&self, offer: &Offer) -> bool {
        offer.caps.iter().all(|c| {
            let used = self.counters.get(&(offer.buyer.clone(), c.key.clone())).copied().unwrap_or(0);
            used.saturating_add(c.amount) <= c.limit
        })
    }

    fn available(&self, offer: &Offer) -> bool {
        !self.buyers.get(&offer.buyer).is_some_and(|b| b.disabled) && self.under_caps(offer)
    }

    fn take(&mut self, offer: &Offer) {
        for c in &offer.caps {
            let k = (offer.buyer.clone(), c.key.clone());
            *self.counters.entry(k.clone()).or_insert(0) += c.amount;
            self.touched_counters.push(k);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.buyers.entry(offer.buyer.clone()).or_default().seq = seq;
        self.touched_buyers.push(offer.buyer.clone());
    }
}

/// The buyers a lead goes to.
#[derive(Debug, Clone)]
pub struct Choice<'p> {
    pub route: &'p RoutePlan,
    pub offers: Vec<&'p Offer>,
}

/// Picks buyers: the first route of the plan with an available buyer, by its strategy.
/// `random` is uniform in [0, 1) (weighted strategy). `None`: nobody can take the lead.
pub fn choose<'p>(plan: &'p Plan, state: &mut State, random: f64) -> Option<Choice<'p>> {
    for route in &plan.routes {
        if route.pull.is_some() {
            // The pool: every enabled partner is offered the lead; caps apply when one claims.
            let partners: Vec<&Offer> = route
                .offers
                .iter()
                .filter(|o| !state.buyers.get(&o.buyer).is_some_and(|b| b.disabled))
                .collect();
            if partners.is_empty() {
                continue;
            }
            return Some(Choice { route, offers: partners });
        }
        let eligible: Vec<&Offer> = route.offers.iter().filter(|o| state.available(o)).collect();
        if eligible.is_empty() {
            continue;
        }
        let chosen: Vec<&Offer> = match route.strategy {
            Strategy::Exclusive => eligible.into_iter().take(1).collect(),
            Strategy::Shared => eligible.into_iter().take(route.max_buyers.max(1)).collect(),
            Strategy::RoundRobin => {
                // Lowest sequence first; a buyer never assigned has sequence 0.
                let seq = |o: &Offer| state.buyers.get(&o.buyer).map_or(0, |b| b.seq);
                eligible.iter().copied().min_by_key(|o| seq(o)).into_iter().collect()
            }
            Strategy::Weighted => weighted(&eligible, random).into_iter().collect(),
        };
        for offer in &chosen {
            state.take(offer);
        }
        return Some(Choice { route, offers: chosen });
    }
    None
}

fn weighted<'p>(eligible: &[&'p Offer], random: f64) -> Option<&'p Offer> {
    let total: u64 = eligible.iter().map(|o| u64::from(o.weight)).sum();
    if total == 0 {
        let i = ((random * eligible.len() as f64) as usize).min(eligible.len().saturating_sub(1));
        return eligible.get(i).copied();
    }
    let mut point = (random * total as f64) as u64;
    for o in eligible {
        let w = u64::from(o.weight);
        if point < w {
            return Some(o);
        }
        point -= w;
    }
    eligible.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{Payload, WebhookPayload};

    fn offer(buyer: &str, priority: i64, weight: u32, cap: Option<u32>) -> Offer {
        Offer {
            buyer: buyer.into(),
            priority,
            weight,
            caps: cap
                .map(|c| {
                    vec![crate::route::caps::Counter { key: "day:x".into(), limit: i64::from(c), amount: 1 }]
                })
                .unwrap_or_default(),
            delivery_id: format!("d-{buyer}"),
            payload: Some(Payload::WebhookV1(WebhookPayload {
                method: "POST".into(),
                url: "http://x".into(),
                headers: vec![],
                content_type: "application/json".into(),
                body: "{}".into(),
            })),
            price: None,
        }
    }

    fn plan(strategy: Strategy, offers: Vec<Offer>, max: usize) -> Plan {
        Plan {
            routes: vec![RoutePlan {
                route: "r".into(),
                strategy,
                max_buyers: max,
                offers,
                skipped: vec![],
                pull: None,
            }],
        }
    }

    fn names(c: &Option<Choice<'_>>) -> Vec<String> {
        c.as_ref().map(|c| c.offers.iter().map(|o| o.buyer.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn exclusive_takes_the_first_available_and_caps_hold() {
        let p = plan(Strategy::Exclusive, vec![offer("a", 1, 1, Some(2)), offer("b", 2, 1, None)], 1);
        let mut s = State::default();
        let picks: Vec<_> = (0..4).map(|_| names(&choose(&p, &mut s, 0.5))).collect();
        assert_eq!(picks, [vec!["a"], vec!["a"], vec!["b"], vec!["b"]]);
    }

    #[test]
    fn round_robin_is_exact() {
        let p = plan(
            Strategy::RoundRobin,
            vec![offer("a", 1, 1, None), offer("b", 1, 1, None), offer("c", 1, 1, None)],
            1,
        );
        let mut s = State { next_seq: 1, ..State::default() };
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..99 {
            *counts.entry(names(&choose(&p, &mut s, 0.5))[0].clone()).or_default() += 1;
        }
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [33, 33, 33]);
    }

    #[test]
    fn weighted_follows_weights_and_shared_takes_n() {
        let p = plan(Strategy::Weighted, vec![offer("a", 1, 3, None), offer("b", 1, 1, None)], 1);
        let mut s = State::default();
        assert_eq!(names(&choose(&p, &mut s, 0.0)), ["a"]);
        assert_eq!(names(&choose(&p, &mut s, 0.74)), ["a"]);
        assert_eq!(names(&choose(&p, &mut s, 0.76)), ["b"]);
        let p = plan(
            Strategy::Shared,
            vec![offer("a", 1, 1, None), offer("b", 2, 1, Some(0)), offer("c", 3, 1, None)],
            2,
        );
        assert_eq!(names(&choose(&p, &mut State::default(), 0.5)), ["a", "c"]);
    }

    #[test]
    fn nobody_available_is_none_and_disabled_buyers_are_skipped() {
        let p = plan(Strategy::Exclusive, vec![offer("a", 1, 1, Some(0))], 1);
        assert!(choose(&p, &mut State::default(), 0.5).is_none());
        let p = plan(Strategy::Exclusive, vec![offer("a", 1, 1, None), offer("b", 2, 1, None)], 1);
        let mut s = State::default();
        s.buyers.insert("a".into(), BuyerState { seq: 0, disabled: true });
        assert_eq!(names(&choose(&p, &mut s, 0.5)), ["b"]);
    }
}
