//! Dispositions: what a pull partner or push buyer reports about a lead it got
//! (accepted, rejected, returned, contacted, converted), and the closed-loop relay of that
//! news to the lead's source vendor.
//!
//! Shaped as load → decide → write under the buyer's lock, because the monthly return cap
//! counts the buyer's earlier returns: two returns racing must not both fit under it. The
//! rules (the return window from when the buyer got the lead, the cap per calendar month
//! in the buyer's time zone) are the pure [`outside_window`] and [`over_cap`]; the relay
//! is queued in the same transaction as the disposition, so the vendor hears of exactly
//! the dispositions recorded.

use super::{Disposition, DispositionKind, DispositionOutcome, Relay, millis, record_event};
use crate::route::Buyer;
use crate::store::commit::{Stage, begin_write, lock_keys};
use crate::store::dispositions::{self, NewDisposition};
use crate::store::outbox::{CLOSED_LOOP_ROUTE, set_stage};
use crate::store::routing;
use crate::store::{Store, StoreError};

/// Records a disposition by `buyer` (a partner's claim, or with `delivery_id` a push
/// delivery). `relay` queues the news to the source vendor (closed loop), if configured.
pub async fn disposition(
    store: &Store,
    lead_id: &str,
    buyer: &Buyer,
    delivery_id: Option<&str>,
    d: &Disposition,
    relay: Option<Relay>,
    now: i64,
) -> Result<DispositionOutcome, StoreError> {
    let mut tx = begin_write(store).await?;
    lock_keys(&mut tx, &[routing::lock_key(&buyer.name)]).await?;
    // When did the buyer get the lead?
    let got_at = match delivery_id {
        Some(id) => dispositions::delivered_at(&mut tx, id, lead_id, &buyer.name).await?,
        None => dispositions::claimed_at(&mut tx, lead_id, &buyer.name).await?,
    };
    let Some(got_at) = got_at else {
        tx.rollback().await?;
        return Ok(DispositionOutcome::NotYours);
    };
    if d.kind == DispositionKind::Returned {
        if let Some(why) = outside_window(buyer.returns.window, got_at, now) {
            tx.rollback().await?;
            return Ok(DispositionOutcome::Refused(why));
        }
        if let Some(cap) = buyer.returns.cap {
            let since = month_start(buyer.caps.timezone(), now);
            let used = dispositions::returns_since(&mut tx, &buyer.name, since).await?;
            if let Some(why) = over_cap(cap, used) {
                tx.rollback().await?;
                return Ok(DispositionOutcome::Refused(why));
            }
        }
    }
    let id = crate::submission::new_id();
    dispositions::insert_disposition(
        &mut tx,
        &NewDisposition {
            id: &id,
            lead_id,
            buyer: &buyer.name,
            delivery_id,
            kind: d.kind,
            reason: d.reason.as_deref(),
            value: d.value.as_deref(),
            at: now,
        },
    )
    .await?;
    record_event(
        &mut tx,
        lead_id,
        now,
        "disposition",
        serde_json::json!({ "buyer": buyer.name, "status": d.kind, "reason": d.reason, "value": d.value, "delivery_id": delivery_id }),
    )
    .await?;
    match d.kind {
        DispositionKind::Returned => set_stage(&mut tx, lead_id, Stage::Returned, now).await?,
        DispositionKind::Converted => set_stage(&mut tx, lead_id, Stage::Converted, now).await?,
        _ => {}
    }
    if let Some(relay) = relay {
        let payload = serde_json::to_string(&relay.payload)
            .map_err(|source| StoreError::Json { what: "payload", source })?;
        let relayed = routing::NewDelivery {
            id: crate::submission::new_id(),
            lead_id: lead_id.to_string(),
            buyer: relay.target,
            route: CLOSED_LOOP_ROUTE.to_string(),
            payload,
            cap_periods: "[]".to_string(),
            price: None,
            created_at: now,
            lease: None,
        };
        routing::insert_deliveries(&mut tx, vec![relayed]).await?;
        routing::notify_outbox(&mut tx).await?;
    }
    tx.commit().await?;
    crate::telemetry::disposition(lead_id, &buyer.name, d.kind.as_str());
    Ok(DispositionOutcome::Recorded { id })
}

/// Why a return at `now` of a lead the buyer got at `got_at` is too late for its return
/// `window`, if it is.
pub fn outside_window(window: std::time::Duration, got_at: i64, now: i64) -> Option<String> {
    (now > got_at.saturating_add(millis(window)))
        .then(|| format!("the return window of {} has passed", humanize(window)))
}

/// Why one more return is over the buyer's monthly `cap`, having `used` returns this
/// month, if it is.
pub fn over_cap(cap: u32, used: i64) -> Option<String> {
    (used >= i64::from(cap)).then(|| format!("the return cap of {cap} per month is reached"))
}

/// The first instant of the calendar month containing `now` in `tz`.
fn month_start(tz: chrono_tz::Tz, now: i64) -> i64 {
    use chrono::{Datelike, TimeZone};
    let Some(utc) = chrono::DateTime::from_timestamp_millis(now) else { return now };
    let local = utc.with_timezone(&tz);
    let Some(first) = local.date_naive().with_day(1).and_then(|d| d.and_hms_opt(0, 0, 0)) else { return now };
    tz.from_local_datetime(&first).earliest().map_or(now, |t| t.timestamp_millis())
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else {
        format!("{} minutes", s / 60)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn month_start_is_local() {
        // 2026-11-01T03:00Z is still October in Chicago.
        let t = 1_793_502_000_000;
        let start = month_start(chrono_tz::America::Chicago, t);
        assert_eq!(crate::clock::rfc3339(start), "2026-10-01T05:00:00Z");
    }

    #[test]
    fn a_return_is_in_time_up_to_the_end_of_the_window() {
        let week = Duration::from_secs(7 * 86_400);
        let got = 1_000;
        assert_eq!(outside_window(week, got, got + 7 * 86_400_000), None);
        assert_eq!(
            outside_window(week, got, got + 7 * 86_400_000 + 1).as_deref(),
            Some("the return window of 7 days has passed")
        );
        assert_eq!(
            outside_window(Duration::from_secs(90 * 60), 0, 90 * 60_000 + 1).as_deref(),
            Some("the return window of 90 minutes has passed")
        );
    }

    #[test]
    fn the_return_cap_counts_this_months_returns() {
        assert_eq!(over_cap(3, 2), None);
        assert_eq!(over_cap(3, 3).as_deref(), Some("the return cap of 3 per month is reached"));
        assert_eq!(over_cap(0, 0).as_deref(), Some("the return cap of 0 per month is reached"));
    }
}
