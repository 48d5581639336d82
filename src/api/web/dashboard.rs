//! The console's dashboard numbers: counts per source and buyer over a period, and the
//! bar charts, laid out here as plain numbers so the page draws them as SVG (no script).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::console::ConsoleCounts;

/// A dashboard period: its length and bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn parse(s: Option<&str>) -> Period {
        match s {
            Some("hour") => Period::Hour,
            Some("month") => Period::Month,
            _ => Period::Day,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
    /// (period length, bucket length) in ms.
    pub fn spans(self) -> (i64, i64) {
        match self {
            Period::Hour => (3_600_000, 300_000),
            Period::Day => (86_400_000, 3_600_000),
            Period::Month => (30 * 86_400_000, 86_400_000),
        }
    }
}

/// One row of a counts table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub received: i64,
    pub accepted: i64,
    pub duplicate: i64,
    pub rejected: i64,
    pub delivered: i64,
    /// Leads pull partners claimed.
    pub claimed: i64,
    pub failed: i64,
    pub dead_lettered: i64,
}

impl Counts {
    fn add_lead(&mut self, status: &str, n: i64) {
        self.received += n;
        match status {
            "accepted" => self.accepted += n,
            "duplicate" => self.duplicate += n,
            "rejected" => self.rejected += n,
            _ => {}
        }
    }
    fn add_delivery(&mut self, status: &str, n: i64) {
        match status {
            "delivered" => self.delivered += n,
            "claimed" => self.claimed += n,
            "dead" => self.dead_lettered += n,
            "rejected" | "scheduled" => self.failed += n,
            _ => {}
        }
    }
}

/// A stacked bar chart, laid out here so the page is plain SVG (no script needed).
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub width: i64,
    pub height: i64,
    pub max: i64,
    pub bars: Vec<Bar>,
    /// (x, text-anchor, text) under the axis.
    pub labels: Vec<(i64, &'static str, String)>,
    /// (class, name) for the legend.
    pub legend: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: i64,
    pub w: i64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub y: i64,
    pub h: i64,
    pub class: &'static str,
    /// The tooltip (`<title>`).
    pub title: String,
}

const CHART_W: i64 = 600;
const CHART_H: i64 = 160;

/// Lays out `series` (per bucket, per class: count) as stacked bars.
pub fn chart(
    buckets: usize,
    series: &[(&'static str, &'static str, Vec<i64>)],
    label: impl Fn(usize) -> String,
) -> Chart {
    let totals: Vec<i64> =
        (0..buckets).map(|i| series.iter().map(|s| s.2.get(i).copied().unwrap_or(0)).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let slot = CHART_W / i64::try_from(buckets.max(1)).unwrap_or(1);
    let w = (slot * 4 / 5).max(1);
    let mut bars = Vec::with_capacity(buckets);
    for (i, _) in totals.iter().enumerate() {
        let x = i64::try_from(i).unwrap_or(0) * slot + (slot - w) / 2;
        let mut y = CHART_H;
        let mut segments = Vec::new();
        for (class, name, values) in series {
            let n = values.get(i).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = (n * CHART_H / max).max(1);
            y -= h;
            segments.push(Segment { y, h, class, title: format!("{}: {n} {name}", label(i)) });
        }
        bars.push(Bar { x, w, segments });
    }
    // First, middle and last bucket; the outer two anchored inside the chart.
    let last = buckets.saturating_sub(1);
    let mut labels: Vec<(i64, &'static str, String)> = vec![(0, "start", label(0))];
    if buckets > 2 {
        labels.push((
            i64::try_from(buckets / 2).unwrap_or(0) * slot + slot / 2,
            "middle",
            label(buckets / 2),
        ));
    }
    if last > 0 {
        labels.push((CHART_W, "end", label(last)));
    }
    Chart {
        width: CHART_W,
        height: CHART_H,
        max,
        bars,
        labels,
        legend: series.iter().map(|(c, n, _)| (*c, *n)).collect(),
    }
}

/// The dashboard's numbers and charts for `counts`.
pub fn dashboard_view(counts: &ConsoleCounts, period: Period, from: i64) -> serde_json::Value {
    let (span, bucket) = period.spans();
    let n = usize::try_from(span / bucket).unwrap_or(1);
    let mut sources: BTreeMap<String, Counts> = BTreeMap::new();
    let mut buyers: BTreeMap<String, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    let mut lead_series = [vec![0; n], vec![0; n], vec![0; n]];
    let mut delivery_series = [vec![0; n], vec![0; n], vec![0; n]];
    let slot = |b: i64| usize::try_from(b).ok().filter(|b| *b < n);
    for c in &counts.leads {
        sources.entry(c.name.clone()).or_default().add_lead(&c.status, c.count);
        total.add_lead(&c.status, c.count);
        if let Some(i) = slot(c.bucket) {
            let k = match c.status.as_str() {
                "accepted" => 0,
                "duplicate" => 1,
                _ => 2,
            };
            lead_series[k][i] += c.count;
        }
    }
    for d in &counts.deliveries {
        sources.entry(d.source.clone()).or_default().add_delivery(&d.status, d.count);
        buyers.entry(d.buyer.clone()).or_default().add_delivery(&d.status, d.count);
        total.add_delivery(&d.status, d.count);
        if let Some(i) = slot(d.bucket) {
            let k = match d.status.as_str() {
                "delivered" | "claimed" => 0,
                "dead" => 2,
                _ => 1,
            };
            delivery_series[k][i] += d.count;
        }
    }
    let label = |i: usize| {
        let at = crate::clock::rfc3339(from + i64::try_from(i).unwrap_or(0) * bucket);
        match period {
            Period::Month => at.get(5..10).unwrap_or_default().to_string(),
            _ => at.get(11..16).unwrap_or_default().to_string(),
        }
    };
    let [accepted, duplicate, rejected] = lead_series;
    let [delivered, failed, dead] = delivery_series;
    serde_json::json!({
        "sources": sources,
        "buyers": buyers,
        "total": total,
        "leads_chart": chart(n, &[("ok", "accepted", accepted), ("dup", "duplicate", duplicate), ("bad", "rejected", rejected)], label),
        "deliveries_chart": chart(n, &[("ok", "delivered or claimed", delivered), ("warn", "failed", failed), ("bad", "dead-lettered", dead)], label),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::console::{BucketCount, DeliveryCount};

    #[test]
    fn the_dashboard_adds_up_per_source_and_buyer_and_charts_each_bucket() {
        let counts = ConsoleCounts {
            leads: vec![
                BucketCount { bucket: 0, name: "s".into(), status: "accepted".into(), count: 3 },
                BucketCount { bucket: 23, name: "s".into(), status: "duplicate".into(), count: 1 },
                BucketCount { bucket: 23, name: "t".into(), status: "rejected".into(), count: 2 },
            ],
            deliveries: vec![
                DeliveryCount {
                    bucket: 1,
                    buyer: "b".into(),
                    source: "s".into(),
                    status: "delivered".into(),
                    count: 2,
                },
                DeliveryCount {
                    bucket: 1,
                    buyer: "b".into(),
                    source: "s".into(),
                    status: "dead".into(),
                    count: 1,
                },
                DeliveryCount {
                    bucket: 2,
                    buyer: "c".into(),
                    source: "t".into(),
                    status: "scheduled".into(),
                    count: 1,
                },
            ],
        };
        let v = dashboard_view(&counts, Period::Day, 0);
        assert_eq!(v["sources"]["s"]["received"], 4);
        assert_eq!(v["sources"]["s"]["delivered"], 2);
        assert_eq!(v["sources"]["s"]["dead_lettered"], 1);
        assert_eq!(v["sources"]["t"]["rejected"], 2);
        assert_eq!(v["buyers"]["c"]["failed"], 1);
        assert_eq!(v["total"]["received"], 6);
        let bars = v["leads_chart"]["bars"].as_array().unwrap();
        assert_eq!(bars.len(), 24);
        assert_eq!(bars[23]["segments"].as_array().unwrap().len(), 2, "duplicate and rejected stacked");
        assert_eq!(v["leads_chart"]["max"], 3);
    }
}
