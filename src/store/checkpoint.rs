//! SQLite WAL checkpoints beside the writer, not in it.
//!
//! By default the connection whose commit pushes the WAL past 1000 pages copies the WAL
//! into the database file and syncs it, inside that commit: with one writer, every request
//! waiting on that commit waits for the checkpoint too. The writer's connection turns that
//! off, and this task checkpoints from a pool connection instead, `PASSIVE` (it never
//! blocks the writer; readers and writers go on while it copies). If the WAL still grows
//! past [`RESTART_FRAMES`] under sustained load (a passive checkpoint cannot finish while
//! commits keep appending), one `RESTART` checkpoint lets the WAL start over; it waits for
//! the writer's current transaction and holds the next one only while it copies.

use std::time::Duration;

use sqlx::{AnyPool, Row};

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(200);

/// WAL frames (pages) beyond which a checkpoint restarts the log (about 128 MiB).
const RESTART_FRAMES: i64 = 32_768;

/// Runs until the pool is closed.
pub(super) fn spawn(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            match checkpoint(&pool, "PASSIVE").await {
                Ok(frames) if frames > RESTART_FRAMES => {
                    if let Err(e) = checkpoint(&pool, "RESTART").await {
                        tracing::debug!(error.message = %e, "WAL restart checkpoint did not run.");
                    }
                }
                Ok(_) => {}
                // Busy or closing: the next tick tries again.
                Err(e) => tracing::debug!(error.message = %e, "WAL checkpoint did not run."),
            }
        }
    });
}

/// Runs one checkpoint; returns the WAL's size in frames.
async fn checkpoint(pool: &AnyPool, mode: &'static str) -> Result<i64, sqlx::Error> {
    let sql = match mode {
        "RESTART" => "PRAGMA wal_checkpoint(RESTART)",
        _ => "PRAGMA wal_checkpoint(PASSIVE)",
    };
    let row = sqlx::query(sql).fetch_one(pool).await?;
    // The pragma answers (busy, log, checkpointed): `log` is the WAL's size in frames.
    row.try_get::<i64, _>("log")
}

#[cfg(test)]
mod tests {
    use super::super::{Store, StoreOptions};

    /// A failed checkpoint is only logged at debug level, so nothing else would notice if
    /// the pragma's `log` column could not be read.
    #[tokio::test]
    async fn a_checkpoint_reads_the_wal_size_from_the_pragmas_log_column() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store =
            Store::open(&StoreOptions { url, synchronous_full: false, max_connections: 2 }).await.unwrap();
        // -1 when the background task was checkpointing at the same moment (busy).
        let frames = super::checkpoint(&store.pool, "PASSIVE").await.unwrap();
        assert!(frames >= -1, "{frames}");
        store.close().await;
    }
}
