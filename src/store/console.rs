//! Reads for the web pages: the operator console's counts, lead search, dead letters and
//! file channel state, and a partner's own claims.
//!
//! Every read here is bounded (`LIMIT`, or `GROUP BY` into a fixed number of buckets), so
//! a page costs the same whatever the size of the tables. The partner reads always filter
//! on the partner's name in SQL: a partner can only ever read rows of its own claims.

use sqlx::Row;

use super::offers::ClaimStatus;
use super::{Store, StoreError};
use crate::clock::rfc3339;

/// Counts in one time bucket, by name (source or buyer) and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCount {
    /// Bucket index from the start of the period (0-based).
    pub bucket: i64,
    pub name: String,
    pub status: String,
    pub count: i64,
}

/// Lead and delivery counts over a period, bucketed.
#[derive(Debug, Clone, Default)]
pub struct ConsoleCounts {
    /// Leads received per source by lead status (`accepted`, `duplicate`, `rejected`).
    pub leads: Vec<BucketCount>,
    /// Deliveries by current status (`delivered`, `scheduled`, `rejected`, `dead`),
    /// counted in the bucket of their last change; `scheduled` only when a try failed
    /// already (`attempts > 0`): a temporary failure. Pull partners' claims are here too,
    /// as status `claimed`, in the bucket of the claim.
    pub deliveries: Vec<DeliveryCount>,
}

/// Deliveries in one time bucket, by buyer, the lead's source and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCount {
    pub bucket: i64,
    pub buyer: String,
    pub source: String,
    pub status: String,
    pub count: i64,
}

/// A lead found by the console's search.
#[derive(Debug, Clone)]
pub struct LeadHit {
    pub id: String,
    pub source: String,
    pub status: String,
    pub stage: String,
    pub fields: crate::lead::Lead,
    pub created_at: String,
}

/// What the search box was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadSearch {
    /// A lead id, a vendor lead id or a submission id: exact.
    Id(String),
    /// A lower-cased e-mail address: exact.
    Email(String),
    /// The trailing digits of a phone number (at least 7).
    Phone(String),
}

impl LeadSearch {
    /// Reads the search box: an `@` means an e-mail, a number with at least 7 digits (and
    /// only phone punctuation) a phone, anything else an id.
    pub fn parse(text: &str) -> Option<LeadSearch> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if t.contains('@') {
            return Some(LeadSearch::Email(t.to_lowercase()));
        }
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        let phone_like = t.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if phone_like && digits.len() >= 7 {
            let tail: String = digits.chars().skip(digits.len().saturating_sub(10)).collect();
            return Some(LeadSearch::Phone(tail));
        }
        Some(LeadSearch::Id(t.to_string()))
    }
}

/// A dead-lettered or rejected delivery.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub lead_id: String,
    pub buyer: String,
    pub route: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// Files received over one channel, by status.
#[derive(Debug, Clone)]
pub struct FileChannelState {
    pub channel: String,
    pub processing: i64,
    pub done: i64,
    pub failed: i64,
    pub last_received_at: Option<String>,
    pub last_error: Option<String>,
}

/// One of a partner's claims, with its latest disposition.
#[derive(Debug, Clone)]
pub struct PartnerClaim {
    pub lead_id: String,
    pub route: Option<String>,
    pub product: Option<String>,
    pub status: super::offers::ClaimStatus,
    pub claimed_at_ms: i64,
    pub lease_until_ms: i64,
    pub confirmed_at_ms: Option<i64>,
    pub disposition: Option<String>,
    pub disposition_at_ms: Option<i64>,
}

/// A lead a partner holds (a live or confirmed claim of its own).
#[derive(Debug, Clone)]
pub struct PartnerLead {
    pub claim: PartnerClaim,
    pub fields: crate::lead::Lead,
    pub score: Option<i64>,
    pub grade: Option<String>,
    /// Every disposition this partner reported on the lead: (kind, reason, value, at ms).
    pub dispositions: Vec<(String, Option<String>, Option<String>, i64)>,
}

fn fields_of(text: &str) -> Result<crate::lead::Lead, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { what: "fields", source })
}

/// `%` and `_` are wildcards in LIKE: escape them (with `\`) in user text.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const CLAIM_COLUMNS: &str = "c.lead_id, o.route, o.product, c.status, c.claimed_at, c.lease_until, c.confirmed_at, \
     (SELECT d.kind FROM dispositions d WHERE d.lead_id = c.lead_id AND d.buyer = c.partner ORDER BY d.at DESC, d.id DESC LIMIT 1) AS disposition, \
     (SELECT MAX(d.at) FROM dispositions d WHERE d.lead_id = c.lead_id AND d.buyer = c.partner) AS disposition_at";

fn claim_row(r: &sqlx::any::AnyRow) -> Result<PartnerClaim, StoreError> {
    Ok(PartnerClaim {
        lead_id: r.try_get("lead_id")?,
        route: r.try_get("route")?,
        product: r.try_get("product")?,
        status: super::offers::ClaimStatus::parse(&r.try_get::<String, _>("status")?)?,
        claimed_at_ms: r.try_get("claimed_at")?,
        lease_until_ms: r.try_get("lease_until")?,
        confirmed_at_ms: r.try_get("confirmed_at")?,
        disposition: r.try_get("disposition")?,
        disposition_at_ms: r.try_get("disposition_at")?,
    })
}

impl Store {
    /// Counts in `[from, to)` in buckets of `bucket_ms`.
    pub async fn console_counts(
        &self,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<ConsoleCounts, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        let mut out = ConsoleCounts::default();
        for r in sqlx::query(
            "SELECT (created_at - $1) / $3 AS bucket, source, status, COUNT(*) AS n FROM leads \
             WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3",
        )
        .bind(from)
        .bind(to)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?
        {
            out.leads.push(BucketCount {
                bucket: r.try_get("bucket")?,
                name: r.try_get("source")?,
                status: r.try_get("status")?,
                count: r.try_get("n")?,
            });
        }
        for r in sqlx::query(
            "SELECT (d.updated_at - $1) / $3 AS bucket, d.buyer, l.source, d.status, COUNT(*) AS n FROM deliveries d \
             JOIN leads l ON l.id = d.lead_id \
             WHERE d.updated_at >= $1 AND d.updated_at < $2 AND d.route <> $4 \
             AND (d.status <> 'scheduled' OR d.attempts > 0) GROUP BY 1, 2, 3, 4",
        )
        .bind(from)
        .bind(to)
        .bind(bucket_ms)
        .bind(super::outbox::CLOSED_LOOP_ROUTE)
        .fetch_all(&self.pool)
        .await?
        {
            out.deliveries.push(DeliveryCount {
                bucket: r.try_get("bucket")?,
                buyer: r.try_get("buyer")?,
                source: r.try_get("source")?,
                status: r.try_get("status")?,
                count: r.try_get("n")?,
            });
        }
        // Claims by pull partners, counted as status `claimed` in the bucket of the claim.
        for r in sqlx::query(
            "SELECT (c.claimed_at - $1) / $3 AS bucket, c.partner, l.source, COUNT(*) AS n FROM claims c \
             JOIN leads l ON l.id = c.lead_id \
             WHERE c.claimed_at >= $1 AND c.claimed_at < $2 GROUP BY 1, 2, 3",
        )
        .bind(from)
        .bind(to)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?
        {
            out.deliveries.push(DeliveryCount {
                bucket: r.try_get("bucket")?,
                buyer: r.try_get("partner")?,
                source: r.try_get("source")?,
                status: "claimed".into(),
                count: r.try_get("n")?,
            });
        }
        Ok(out)
    }

    /// Leads matching `q`, newest first (at most `limit`).
    pub async fn search_leads(&self, q: &LeadSearch, limit: i64) -> Result<Vec<LeadHit>, StoreError> {
        const COLUMNS: &str = "id, source, status, stage, fields, created_at";
        let limit = limit.clamp(1, 200);
        let rows = match q {
            LeadSearch::Id(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM leads WHERE id = $1 OR vendor_lead_id = $1 OR submission_id = $1 \
                     ORDER BY created_at DESC LIMIT {limit}"
                )))
                .bind(id.clone())
                .fetch_all(&self.pool)
                .await?
            }
            LeadSearch::Email(email) => {
                // The canonical fields are compact JSON with the address lower-cased.
                let json = serde_json::to_string(email).unwrap_or_default();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM leads WHERE fields LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT {limit}"
                )))
                .bind(format!("%\"email\":{}%", like_literal(&json)))
                .fetch_all(&self.pool)
                .await?
            }
            LeadSearch::Phone(digits) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM leads WHERE fields LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT {limit}"
                )))
                .bind(format!("%\"phone\":\"%{}\"%", like_literal(digits)))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(LeadHit {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    status: r.try_get("status")?,
                    stage: r.try_get("stage")?,
                    fields: fields_of(&r.try_get::<String, _>("fields")?)?,
                    created_at: rfc3339(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Dead-lettered and rejected deliveries, most recent first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, lead_id, buyer, route, status, attempts, last_error, updated_at FROM deliveries \
             WHERE status IN ('dead', 'rejected') ORDER BY updated_at DESC, id LIMIT $1",
        )
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    id: r.try_get("id")?,
                    lead_id: r.try_get("lead_id")?,
                    buyer: r.try_get("buyer")?,
                    route: r.try_get("route")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    updated_at: rfc3339(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    /// Per file channel (`ftp`, `drop_dir`, `import`): files by status and the last error.
    pub async fn file_channels(&self) -> Result<Vec<FileChannelState>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, \
             SUM(CASE WHEN status = 'processing' THEN 1 ELSE 0 END) AS processing, \
             SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, \
             SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
             MAX(received_at) AS last_received_at FROM files GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let channel: String = r.try_get("channel")?;
            let last_error = sqlx::query(
                "SELECT error FROM files WHERE channel = $1 AND status = 'failed' ORDER BY updated_at DESC LIMIT 1",
            )
            .bind(channel.clone())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("error"))
            .transpose()?
            .flatten();
            out.push(FileChannelState {
                channel,
                processing: r.try_get::<Option<i64>, _>("processing")?.unwrap_or(0),
                done: r.try_get::<Option<i64>, _>("done")?.unwrap_or(0),
                failed: r.try_get::<Option<i64>, _>("failed")?.unwrap_or(0),
                last_received_at: r.try_get::<Option<i64>, _>("last_received_at")?.map(rfc3339),
                last_error,
            });
        }
        Ok(out)
    }

    /// `partner`'s claims, newest first.
    pub async fn partner_claims(&self, partner: &str, limit: i64) -> Result<Vec<PartnerClaim>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM claims c LEFT JOIN offers o ON o.lead_id = c.lead_id \
             WHERE c.partner = $1 ORDER BY c.claimed_at DESC, c.id DESC LIMIT $2"
        )))
        .bind(partner.to_string())
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(claim_row).collect()
    }

    /// The lead `lead_id` as `partner` may see it: only while it holds a live lease or a
    /// confirmed claim on it. `None` for every other lead, offered to it or not.
    pub async fn partner_lead(
        &self,
        lead_id: &str,
        partner: &str,
        now: i64,
    ) -> Result<Option<PartnerLead>, StoreError> {
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS}, l.fields, l.score, l.grade FROM claims c \
             JOIN leads l ON l.id = c.lead_id LEFT JOIN offers o ON o.lead_id = c.lead_id \
             WHERE c.lead_id = $1 AND c.partner = $2 \
             AND (c.status = '{confirmed}' OR (c.status = '{leased}' AND c.lease_until > $3)) \
             ORDER BY c.claimed_at DESC LIMIT 1",
            confirmed = ClaimStatus::Confirmed.as_str(),
            leased = ClaimStatus::Leased.as_str()
        )))
        .bind(lead_id.to_string())
        .bind(partner.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let dispositions = sqlx::query(
            "SELECT kind, reason, value, at FROM dispositions WHERE lead_id = $1 AND buyer = $2 ORDER BY at, id",
        )
        .bind(lead_id.to_string())
        .bind(partner.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("reason")?, r.try_get("value")?, r.try_get("at")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(PartnerLead {
            claim: claim_row(&row)?,
            fields: fields_of(&row.try_get::<String, _>("fields")?)?,
            score: row.try_get("score")?,
            grade: row.try_get("grade")?,
            dispositions,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_box_tells_emails_phones_and_ids_apart() {
        assert_eq!(LeadSearch::parse(" Ann@Example.COM "), Some(LeadSearch::Email("ann@example.com".into())));
        assert_eq!(LeadSearch::parse("+1 (206) 555-1001"), Some(LeadSearch::Phone("2065551001".into())));
        assert_eq!(LeadSearch::parse("555-1001"), Some(LeadSearch::Phone("5551001".into())));
        assert_eq!(
            LeadSearch::parse("0191f0c2-7e1a-7000-8000-000000000000"),
            Some(LeadSearch::Id("0191f0c2-7e1a-7000-8000-000000000000".into()))
        );
        assert_eq!(LeadSearch::parse("  "), None);
    }

    #[test]
    fn like_wildcards_in_user_text_are_escaped() {
        assert_eq!(like_literal("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
