//! The SQLite writer's own connection: rusqlite, owned by the writer's thread and run
//! synchronously, with cached prepared statements.
//!
//! Why not sqlx here: sqlx-sqlite runs each connection on a worker thread of its own and
//! hands every statement over a channel; under load a third of the gateway's samples were
//! those hand-offs and the wake-ups around them. The group commit is serial by nature
//! (SQLite has one write lock), so it runs best as plain calls on one thread. The rest of
//! the store (reads, admin actions) keeps the sqlx pool; both open the same file, and
//! rusqlite 0.39 links the same `libsqlite3-sys` as sqlx 0.9.

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::ValueRef;

use super::tx::{Arg, Exec, Row, Value};
use super::{Dialect, StoreError};

/// Prepared statements kept per connection: the write path has a few dozen shapes
/// (each multi-row insert in five sizes, see `commit::CHUNK_ROWS`).
const STATEMENT_CACHE: usize = 512;

/// The writer's connection.
pub(crate) struct RawConn {
    conn: rusqlite::Connection,
}

impl RawConn {
    /// Opens the store's SQLite file (already created and migrated by the pool) the way
    /// the writer wants it: WAL, `synchronous = NORMAL` (a commit writes its frames to the
    /// WAL without syncing; with `synchronous = "full"` configured the commit loop syncs the
    /// WAL itself before answering, `pipeline::durable`), no automatic checkpoints (the
    /// store's checkpointer runs them beside the writer), a page cache of `cache_kib`
    /// (`store::WRITER_CACHE_KIB` unless the caller chose otherwise).
    pub(crate) fn open(path: &Path, cache_kib: u32) -> Result<RawConn, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; \
             PRAGMA foreign_keys=ON; PRAGMA cache_size=-{cache_kib}; PRAGMA temp_store=MEMORY; \
             PRAGMA wal_autocheckpoint=0;"
        ))?;
        Ok(RawConn { conn })
    }

    /// `BEGIN IMMEDIATE`: the batch holds SQLite's write lock from its first read, so
    /// check-then-insert is exact.
    pub(crate) fn begin(&mut self) -> Result<RawTx<'_>, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(RawTx { conn: &mut self.conn, open: true })
    }
}

/// A transaction on the writer's connection; rolled back when dropped uncommitted.
pub(crate) struct RawTx<'c> {
    conn: &'c mut rusqlite::Connection,
    open: bool,
}

impl RawTx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            // A failed COMMIT (disk full, I/O error) can leave the transaction open.
            if !self.conn.is_autocommit() {
                let _ignored = self.conn.execute_batch("ROLLBACK");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Prepares (from the cache) and binds a statement. `$N` binds the N-th argument
    /// wherever it appears; anonymous `?` take the arguments in order.
    fn prepared(&self, sql: &str, args: &[Arg]) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let numbered = sql.contains('$');
        for i in 1..=stmt.parameter_count() {
            let at = if numbered {
                stmt.parameter_name(i)
                    .and_then(|n| n.strip_prefix('$'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(i)
            } else {
                i
            };
            let arg = args
                .get(at - 1)
                .ok_or_else(|| StoreError::Commit(format!("no argument for parameter {at}")))?;
            match arg {
                Arg::Text(v) => stmt.raw_bind_parameter(i, v.as_str())?,
                Arg::OptText(v) => stmt.raw_bind_parameter(i, v.as_deref())?,
                Arg::Int(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::OptInt(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Blob(v) => stmt.raw_bind_parameter(i, v.as_slice())?,
            }
        }
        Ok(stmt)
    }

    fn execute_now(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        {
            let mut stmt = self.prepared(sql, args)?;
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
        }
        Ok(self.conn.changes())
    }

    fn fetch_now(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepared(sql, args)?;
        let names: Arc<[String]> = stmt.column_names().into_iter().map(str::to_string).collect();
        let width = names.len();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row::new(names.clone(), values));
        }
        Ok(out)
    }
}

impl Drop for RawTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ignored = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Exec for RawTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        self.execute_now(sql, &args)
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        self.fetch_now(sql, &args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn numbered_parameters_bind_by_number_wherever_they_appear() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = RawConn::open(&dir.path().join("t.db"), 1024).unwrap();
        conn.conn.execute_batch("CREATE TABLE c (buyer TEXT, period TEXT, count INTEGER)").unwrap();
        let mut tx = conn.begin().unwrap();
        block_on(async {
            tx.execute(
                "INSERT INTO c VALUES (?, ?, ?), (?, ?, ?)",
                vec!["a".into(), "day".into(), 5i64.into(), "b".into(), "day".into(), 1i64.into()],
            )
            .await
            .unwrap();
            // `$3` comes first in the text: it still binds the third argument.
            let changed = tx
                .execute(
                    "UPDATE c SET count = CASE WHEN count > $3 THEN count - $3 ELSE 0 END WHERE buyer = $1 AND period = $2",
                    vec!["a".into(), "day".into(), 2i64.into()],
                )
                .await
                .unwrap();
            assert_eq!(changed, 1);
            let rows = tx.fetch("SELECT buyer, count FROM c ORDER BY buyer", vec![]).await.unwrap();
            assert_eq!(rows[0].get::<i64>("count").unwrap(), 3);
            assert_eq!(rows[1].get::<String>("buyer").unwrap(), "b");
            assert!(rows[0].get::<i64>("nope").is_err(), "a missing column is an error naming it");
            assert!(rows[0].get::<i64>("buyer").is_err(), "a text column is not an integer");
        });
        tx.commit().unwrap();
    }

    #[test]
    fn the_writer_cache_is_the_size_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let conn = RawConn::open(&dir.path().join("t.db"), 16 * 1024).unwrap();
        let kib: i64 = conn.conn.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
        assert_eq!(kib, -16 * 1024, "negative: KiB, not pages");
    }

    #[test]
    fn a_dropped_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = RawConn::open(&dir.path().join("t.db"), 1024).unwrap();
        conn.conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        {
            let mut tx = conn.begin().unwrap();
            block_on(tx.execute("INSERT INTO t VALUES ($1)", vec![1i64.into()])).unwrap();
        }
        let mut tx = conn.begin().unwrap();
        let rows = block_on(tx.fetch("SELECT COUNT(*) AS n FROM t", vec![])).unwrap();
        assert_eq!(rows[0].get::<i64>("n").unwrap(), 0);
    }
}
