//! The `files` table (one row per file received) and the look-up of a chunk's committed
//! answer, which lets a resumed file skip the chunks that are already in.
//!
//! These statements are single-row and outside the write path: a file's *rows* are
//! committed through the writer like any submission; this only records where the file
//! is and how it ended.

use sqlx::Row;

use super::{Store, StoreError};

/// A file's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: String,
    pub source: String,
    pub channel: String,
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub format: String,
    pub chunk_rows: i64,
    pub status: String,
    pub work_path: String,
    pub results_path: Option<String>,
    pub archive_path: Option<String>,
    pub rows: i64,
    pub accepted: i64,
    pub duplicate: i64,
    pub rejected: i64,
    pub error: Option<String>,
    pub received_at: i64,
}

/// How a file ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOutcome {
    pub status: &'static str,
    pub rows: i64,
    pub accepted: i64,
    pub duplicate: i64,
    pub rejected: i64,
    pub error: Option<String>,
    pub results_path: Option<String>,
    pub archive_path: Option<String>,
}

const COLUMNS: &str = "id, source, channel, name, digest, size, format, chunk_rows, status, work_path, \
     results_path, archive_path, rows, accepted, duplicate, rejected, error, received_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<FileRecord, StoreError> {
    Ok(FileRecord {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        channel: r.try_get("channel")?,
        name: r.try_get("name")?,
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        format: r.try_get("format")?,
        chunk_rows: r.try_get("chunk_rows")?,
        status: r.try_get("status")?,
        work_path: r.try_get("work_path")?,
        results_path: r.try_get("results_path")?,
        archive_path: r.try_get("archive_path")?,
        rows: r.try_get("rows")?,
        accepted: r.try_get("accepted")?,
        duplicate: r.try_get("duplicate")?,
        rejected: r.try_get("rejected")?,
        error: r.try_get("error")?,
        received_at: r.try_get("received_at")?,
    })
}

impl Store {
    /// Records a file as `processing` (durable before its first row is read), with the
    /// results file it is to get.
    pub async fn file_begin(&self, f: &FileRecord, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO files (id, source, channel, name, digest, size, format, chunk_rows, status, work_path, \
             results_path, rows, accepted, duplicate, rejected, received_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'processing', $9, $10, 0, 0, 0, 0, $11, $12)",
        )
        .bind(f.id.clone())
        .bind(f.source.clone())
        .bind(f.channel.clone())
        .bind(f.name.clone())
        .bind(f.digest.clone())
        .bind(f.size)
        .bind(f.format.clone())
        .bind(f.chunk_rows)
        .bind(f.work_path.clone())
        .bind(f.results_path.clone())
        .bind(f.received_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a file's bytes are now (after a move into the work directory).
    pub async fn file_moved(&self, id: &str, work_path: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE files SET work_path = $1, updated_at = $2 WHERE id = $3")
            .bind(work_path.to_owned())
            .bind(now)
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a file ended.
    pub async fn file_finish(&self, id: &str, o: &FileOutcome, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE files SET status = $1, rows = $2, accepted = $3, duplicate = $4, rejected = $5, error = $6, \
             results_path = $7, archive_path = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(o.status)
        .bind(o.rows)
        .bind(o.accepted)
        .bind(o.duplicate)
        .bind(o.rejected)
        .bind(o.error.clone())
        .bind(o.results_path.clone())
        .bind(o.archive_path.clone())
        .bind(now)
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM files WHERE id = $1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_owned()).fetch_optional(&self.pool).await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Files of `channel` still `processing` (interrupted), oldest first.
    pub async fn files_unfinished(&self, channel: &str) -> Result<Vec<FileRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE status = 'processing' AND channel = $1 ORDER BY received_at, id"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(channel.to_owned()).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Files received from `source`, newest first (for operators and tests).
    pub async fn files_of(&self, source: &str) -> Result<Vec<FileRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM files WHERE source = $1 ORDER BY received_at DESC, id DESC");
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source.to_owned()).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// The chunk size first used for these bytes from this source: a file seen again keeps
    /// its chunk boundaries, hence its chunk keys, whatever the config says now.
    pub async fn file_chunk_rows(&self, source: &str, digest: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT chunk_rows FROM files WHERE source = $1 AND digest = $2 ORDER BY received_at, id LIMIT 1",
        )
        .bind(source.to_owned())
        .bind(digest.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("chunk_rows")).transpose()?)
    }

    /// The answer stored under an idempotency key (JSON), if any.
    pub async fn stored_answer(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT result FROM idempotency WHERE key = $1")
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("result")).transpose()?)
    }
}
