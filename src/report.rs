//! Funnel reports per source and per buyer/partner over a period.
//!
//! A report covers the leads *received* in the period (a cohort): what became of them,
//! whenever it happened. Columns: received, accepted, duplicate, rejected, delivered,
//! claimed, expired (claims whose lease ran out), returned, converted, conversion rate
//! (converted / sold, where sold = delivered or confirmed claims), median time to claim
//! (offer → claim) and to disposition (delivery or claim → first disposition), SLA
//! breaches. Output as a table, CSV (safe to open in a spreadsheet) or JSON.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::store::report::ReportRows;

/// One row of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Line {
    pub received: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub delivered: u64,
    pub claimed: u64,
    pub expired: u64,
    pub returned: u64,
    pub converted: u64,
    /// converted / sold (delivered + confirmed claims); `None` when nothing was sold.
    pub conversion_rate: Option<f64>,
    pub median_secs_to_claim: Option<i64>,
    pub median_secs_to_disposition: Option<i64>,
    pub sla_breaches: u64,
}

/// A whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub sources: BTreeMap<String, Line>,
    pub buyers: BTreeMap<String, Line>,
}

#[derive(Default)]
struct Acc {
    line: Line,
    sold: u64,
    to_claim: Vec<i64>,
    to_disposition: Vec<i64>,
}

impl Acc {
    fn finish(mut self) -> Line {
        self.line.conversion_rate = (self.sold > 0)
            .then(|| (self.line.converted as f64 / self.sold as f64 * 10_000.0).round() / 10_000.0);
        self.line.median_secs_to_claim = median(&mut self.to_claim);
        self.line.median_secs_to_disposition = median(&mut self.to_disposition);
        self.line
    }
}

/// The lower median, in seconds (rounded).
fn median(ms: &mut [i64]) -> Option<i64> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_unstable();
    Some((ms[(ms.len() - 1) / 2] + 500).div_euclid(1000))
}

/// Computes a report from the period's rows.
pub fn compute(rows: &ReportRows, from: i64, to: i64) -> Report {
    let mut sources: BTreeMap<String, Acc> = BTreeMap::new();
    let mut buyers: BTreeMap<String, Acc> = BTreeMap::new();
    let source_of: HashMap<&str, &str> =
        rows.leads.iter().map(|(id, s, _)| (id.as_str(), s.as_str())).collect();

    for (_, source, status) in &rows.leads {
        let a = sources.entry(source.clone()).or_default();
        a.line.received += 1;
        match status.as_str() {
            "accepted" => a.line.accepted += 1,
            "duplicate" => a.line.duplicate += 1,
            "rejected" => a.line.rejected += 1,
            _ => {}
        }
    }
    // When each (lead, buyer) got the lead: delivery time or claim time.
    let mut got_at: HashMap<(&str, &str), i64> = HashMap::new();
    for (lead, buyer, status, at) in &rows.deliveries {
        if status == "delivered" {
            got_at.insert((lead, buyer), *at);
            buyers.entry(buyer.clone()).or_default().line.delivered += 1;
            buyers.entry(buyer.clone()).or_default().sold += 1;
            if let Some(s) = source_of.get(lead.as_str()) {
                let a = sources.entry((*s).to_string()).or_default();
                a.line.delivered += 1;
                a.sold += 1;
            }
        }
    }
    for (lead, partner, status, offered_at, claimed_at) in &rows.claims {
        let source = source_of.get(lead.as_str()).map(|s| (*s).to_string()).unwrap_or_default();
        for a in [buyers.entry(partner.clone()).or_default(), sources.entry(source).or_default()] {
            a.line.claimed += 1;
            a.to_claim.push(claimed_at - offered_at);
            match status.as_str() {
                "expired" => a.line.expired += 1,
                "confirmed" => a.sold += 1,
                _ => {}
            }
        }
        got_at.entry((lead, partner)).or_insert(*claimed_at);
    }
    // First disposition per (lead, buyer).
    let mut first: HashMap<(&str, &str), i64> = HashMap::new();
    for (lead, buyer, kind, at) in &rows.dispositions {
        let source = source_of.get(lead.as_str()).map(|s| (*s).to_string()).unwrap_or_default();
        for a in [buyers.entry(buyer.clone()).or_default(), sources.entry(source).or_default()] {
            match kind.as_str() {
                "returned" => a.line.returned += 1,
                "converted" => a.line.converted += 1,
                _ => {}
            }
        }
        let e = first.entry((lead, buyer)).or_insert(*at);
        *e = (*e).min(*at);
    }
    for ((lead, buyer), at) in first {
        if let Some(got) = got_at.get(&(lead, buyer)) {
            let source = source_of.get(lead).map(|s| (*s).to_string()).unwrap_or_default();
            for a in [buyers.entry(buyer.to_string()).or_default(), sources.entry(source).or_default()] {
                a.to_disposition.push(at - got);
            }
        }
    }
    for (lead, buyer) in &rows.breaches {
        buyers.entry(buyer.clone()).or_default().line.sla_breaches += 1;
        if let Some(s) = source_of.get(lead.as_str()) {
            sources.entry((*s).to_string()).or_default().line.sla_breaches += 1;
        }
    }
    Report {
        from: crate::clock::rfc3339(from),
        to: crate::clock::rfc3339(to),
        sources: sources.into_iter().map(|(k, a)| (k, a.finish())).collect(),
        buyers: buyers.into_iter().map(|(k, a)| (k, a.finish())).collect(),
    }
}

const HEADER: [&str; 15] = [
    "kind",
    "name",
    "received",
    "accepted",
    "duplicate",
    "rejected",
    "delivered",
    "claimed",
    "expired",
    "returned",
    "converted",
    "conversion_rate",
    "median_secs_to_claim",
    "median_secs_to_disposition",
    "sla_breaches",
];

fn cells(kind: &str, name: &str, l: &Line) -> Vec<String> {
    let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    vec![
        kind.into(),
        name.into(),
        l.received.to_string(),
        l.accepted.to_string(),
        l.duplicate.to_string(),
        l.rejected.to_string(),
        l.delivered.to_string(),
        l.claimed.to_string(),
        l.expired.to_string(),
        l.returned.to_string(),
        l.converted.to_string(),
        l.conversion_rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
        opt(l.median_secs_to_claim),
        opt(l.median_secs_to_disposition),
        l.sla_breaches.to_string(),
    ]
}

fn rows(r: &Report) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (name, l) in &r.sources {
        out.push(cells("source", name, l));
    }
    for (name, l) in &r.buyers {
        out.push(cells("buyer", name, l));
    }
    out
}

/// A cell made safe for spreadsheets (OWASP CSV injection): a leading `=`, `+`, `-`,
/// `@`, tab or CR is neutralised with a `'`.
pub fn csv_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// RFC 4180 CSV with a header row.
pub fn to_csv(r: &Report) -> String {
    let quote = |c: &str| {
        let c = csv_safe(c);
        if c.contains([',', '"', '\n', '\r']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c }
    };
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    for row in rows(r) {
        out.push_str(&row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// An aligned text table.
pub fn to_table(r: &Report) -> String {
    let all: Vec<Vec<String>> =
        std::iter::once(HEADER.iter().map(|h| h.to_string()).collect()).chain(rows(r)).collect();
    let widths: Vec<usize> =
        (0..HEADER.len()).map(|i| all.iter().map(|row| row[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("Leads received from {} to {}\n", r.from, r.to);
    for row in &all {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("-1"), "'-1");
        assert_eq!(csv_safe("acme"), "acme");
    }

    #[test]
    fn a_small_funnel_adds_up() {
        let s = |x: &str| x.to_string();
        let rows = ReportRows {
            leads: vec![
                (s("l1"), s("web"), s("accepted")),
                (s("l2"), s("web"), s("accepted")),
                (s("l3"), s("web"), s("duplicate")),
            ],
            deliveries: vec![(s("l1"), s("acme"), s("delivered"), 1_000)],
            claims: vec![(s("l2"), s("p"), s("confirmed"), 0, 60_000)],
            dispositions: vec![
                (s("l1"), s("acme"), s("converted"), 61_000),
                (s("l2"), s("p"), s("returned"), 180_000),
            ],
            breaches: vec![(s("l2"), s("p"))],
        };
        let r = compute(&rows, 0, 1);
        let web = &r.sources["web"];
        assert_eq!((web.received, web.accepted, web.duplicate, web.delivered, web.claimed), (3, 2, 1, 1, 1));
        assert_eq!((web.returned, web.converted, web.conversion_rate), (1, 1, Some(0.5)));
        assert_eq!(web.median_secs_to_claim, Some(60));
        assert_eq!(web.median_secs_to_disposition, Some(60));
        assert_eq!(r.buyers["acme"].conversion_rate, Some(1.0));
        assert_eq!(r.buyers["p"].sla_breaches, 1);
        assert!(to_csv(&r).starts_with("kind,name,received"));
        assert!(to_table(&r).contains("source  web"));
    }
}
