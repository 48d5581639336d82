//! E-mail intake records: mailbox progress and consumer state, and the per-message
//! exactly-once rows (see `migrations/*/0004_email.sql`).

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::clock::rfc3339;

/// Where a mailbox's consumer stands: what `/readyz` and `GET /v1/admin/mailboxes` show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MailboxStatus {
    pub mailbox: String,
    pub source: String,
    /// `connecting`, `idle` (waiting on IMAP IDLE), `polling`, `error` or `stopped`.
    pub state: String,
    pub uidvalidity: Option<i64>,
    pub last_uid: i64,
    /// Last successful look at the folder.
    pub last_fetch_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// A message already taken from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub submission_id: String,
    /// `pending`, `committed` or `done`.
    pub status: String,
    pub outcome: Option<String>,
    pub uidvalidity: i64,
    pub uid: i64,
}

impl Store {
    /// The mailbox's recorded `(uidvalidity, last_uid)`, creating its row on first use.
    pub async fn mailbox_progress(
        &self,
        mailbox: &str,
        source: &str,
        now: i64,
    ) -> Result<(Option<i64>, i64), StoreError> {
        sqlx::query(
            "INSERT INTO email_mailboxes (mailbox, source, uidvalidity, last_uid, state, updated_at) \
             VALUES ($1, $2, NULL, 0, 'connecting', $3) ON CONFLICT (mailbox) DO NOTHING",
        )
        .bind(mailbox.to_owned())
        .bind(source.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT uidvalidity, last_uid FROM email_mailboxes WHERE mailbox = $1")
            .bind(mailbox.to_owned())
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("uidvalidity")?, row.try_get("last_uid")?))
    }

    /// Records a new UIDVALIDITY (the folder was recreated: every UID is new) or the
    /// highest UID handled so far.
    pub async fn save_mailbox_progress(
        &self,
        mailbox: &str,
        uidvalidity: i64,
        last_uid: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_mailboxes SET uidvalidity = $1, last_uid = $2, updated_at = $3 WHERE mailbox = $4",
        )
        .bind(uidvalidity)
        .bind(last_uid)
        .bind(now)
        .bind(mailbox.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The consumer's state; `fetched` marks a successful look at the folder, `error`
    /// records what went wrong (kept until the next success clears it).
    pub async fn set_mailbox_state(
        &self,
        mailbox: &str,
        state: &str,
        fetched: bool,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = match (fetched, error.is_some()) {
            (_, true) => {
                "UPDATE email_mailboxes SET state = $1, last_error = $2, last_error_at = $3, updated_at = $3 WHERE mailbox = $4"
            }
            (true, false) => {
                "UPDATE email_mailboxes SET state = $1, last_error = $2, last_fetch_at = $3, updated_at = $3 WHERE mailbox = $4"
            }
            (false, false) => {
                "UPDATE email_mailboxes SET state = $1, last_error = COALESCE($2, last_error), updated_at = $3 WHERE mailbox = $4"
            }
        };
        sqlx::query(sql)
            .bind(state.to_owned())
            .bind(error.map(str::to_owned))
            .bind(now)
            .bind(mailbox.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every mailbox's consumer state, by name.
    pub async fn mailboxes(&self) -> Result<Vec<MailboxStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox, source, state, uidvalidity, last_uid, last_fetch_at, last_error, last_error_at \
             FROM email_mailboxes ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MailboxStatus {
                    mailbox: r.try_get("mailbox")?,
                    source: r.try_get("source")?,
                    state: r.try_get("state")?,
                    uidvalidity: r.try_get("uidvalidity")?,
                    last_uid: r.try_get("last_uid")?,
                    last_fetch_at: r.try_get::<Option<i64>, _>("last_fetch_at")?.map(rfc3339),
                    last_error: r.try_get("last_error")?,
                    last_error_at: r.try_get::<Option<i64>, _>("last_error_at")?.map(rfc3339),
                })
            })
            .collect()
    }

    /// The row of a message already taken from `mailbox`, if any.
    pub async fn email_message(&self, mailbox: &str, key: &str) -> Result<Option<EmailMessage>, StoreError> {
        let row = sqlx::query(
            "SELECT submission_id, status, outcome, uidvalidity, uid FROM email_messages WHERE mailbox = $1 AND message_key = $2",
        )
        .bind(mailbox.to_owned())
        .bind(key.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(EmailMessage {
                submission_id: r.try_get("submission_id")?,
                status: r.try_get("status")?,
                outcome: r.try_get("outcome")?,
                uidvalidity: r.try_get("uidvalidity")?,
                uid: r.try_get("uid")?,
            })
        })
        .transpose()
    }

    /// Records that `key` is being taken as `submission_id`; returns the row that holds
    /// (another instance may have been first).
    pub async fn claim_email_message(
        &self,
        mailbox: &str,
        key: &str,
        uidvalidity: i64,
        uid: i64,
        submission_id: &str,
        now: i64,
    ) -> Result<EmailMessage, StoreError> {
        sqlx::query(
            "INSERT INTO email_messages (mailbox, message_key, uidvalidity, uid, submission_id, status, outcome, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', NULL, $6, $6) ON CONFLICT (mailbox, message_key) DO NOTHING",
        )
        .bind(mailbox.to_owned())
        .bind(key.to_owned())
        .bind(uidvalidity)
        .bind(uid)
        .bind(submission_id.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.email_message(mailbox, key).await?.ok_or(StoreError::Commit("email message row vanished".into()))
    }

    /// Moves a message row on (`committed` with its outcome, then `done`), and records
    /// where the message now is.
    pub async fn mark_email_message(
        &self,
        mailbox: &str,
        key: &str,
        status: &str,
        outcome: Option<&str>,
        (uidvalidity, uid): (i64, i64),
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_messages SET status = $1, outcome = COALESCE($2, outcome), uidvalidity = $3, uid = $4, updated_at = $5 \
             WHERE mailbox = $6 AND message_key = $7",
        )
        .bind(status.to_owned())
        .bind(outcome.map(str::to_owned))
        .bind(uidvalidity)
        .bind(uid)
        .bind(now)
        .bind(mailbox.to_owned())
        .bind(key.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A stored submission's status, without loading its body.
    pub async fn submission_status(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM submissions WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get("status")?)).transpose()
    }

    /// Sets a committed submission's status (`needs_template`, `quarantined`): states the
    /// pipeline does not know but the operator filters on.
    pub async fn set_submission_status(&self, id: &str, status: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE submissions SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.to_owned())
            .bind(now)
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
