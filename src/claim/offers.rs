//! What a partner sees of the pool: the open offers it may claim now.
//!
//! The store returns every open, unexpired offer listing the partner (narrowed in SQL by
//! product and score, in the asked order); who may claim which (exclusive-first turns)
//! and paging are decided here, by the same [`eligible`] a claim is checked with, so a
//! partner never sees an offer its claim would refuse as not yet its turn.

use serde::Serialize;

use super::eligible;
use crate::store::offers::{self, ListOrder, OfferFilter, OpenOffer};
use crate::store::{Store, StoreError};

/// How to list offers.
#[derive(Debug, Clone, Default)]
pub struct OfferQuery {
    /// Highest score first instead of newest first.
    pub by_score: bool,
    pub limit: i64,
    pub offset: i64,
    pub product: Option<String>,
    pub min_score: Option<i64>,
    pub state: Option<String>,
}

/// An offer a partner may see.
#[derive(Debug, Clone, Serialize)]
pub struct OfferRow {
    pub lead_id: String,
    pub route: String,
    pub source: String,
    pub product: Option<String>,
    pub score: i64,
    pub grade: Option<String>,
    #[serde(skip)]
    pub created_at_ms: i64,
    pub offered_at: String,
    pub expires_at: String,
    /// The canonical fields (the API masks them per the partner's preview).
    #[serde(skip)]
    pub fields: crate::lead::Lead,
}

/// Open offers `partner` may claim now, per `q`.
pub async fn offers_for(
    store: &Store,
    partner: &str,
    now: i64,
    q: &OfferQuery,
) -> Result<Vec<OfferRow>, StoreError> {
    let filter = OfferFilter {
        product: q.product.as_deref(),
        min_score: q.min_score,
        order: if q.by_score { ListOrder::BestScore } else { ListOrder::Newest },
    };
    let candidates = offers::open_offers(store, partner, now, filter).await?;
    page(candidates, partner, now, q)
}

/// The page of `q` among the offers `partner` may claim at `now`, in the store's order.
fn page(
    candidates: Vec<OpenOffer>,
    partner: &str,
    now: i64,
    q: &OfferQuery,
) -> Result<Vec<OfferRow>, StoreError> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for o in candidates {
        if !eligible(&o.terms, partner, now) {
            continue;
        }
        let fields = o.fields()?;
        if let Some(state) = &q.state
            && fields.state.as_deref() != Some(state.as_str())
        {
            continue;
        }
        if skipped < q.offset {
            skipped += 1;
            continue;
        }
        let created = o.terms.created_at;
        out.push(OfferRow {
            lead_id: o.lead_id,
            route: o.route,
            source: o.source,
            product: o.product,
            score: o.score,
            grade: o.grade,
            created_at_ms: created,
            offered_at: crate::clock::rfc3339(created),
            expires_at: crate::clock::rfc3339(o.expires_at),
            fields,
        });
        if out.len() as i64 >= q.limit.clamp(1, 500) {
            break;
        }
    }
    Ok(out)
}
