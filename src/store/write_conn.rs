//! The group commit's connection: kept across commits (a pooled one would come back with a
//! cold page cache, SQLite re-reading what other connections changed, on every commit).
//!
//! On a SQLite file it is the writer thread's own rusqlite connection ([`super::raw`]); on
//! PostgreSQL (and SQLite in memory) a sqlx connection taken from the pool once. Either
//! way a transaction on it is an [`Exec`], so the commit stage is written once.

use super::raw::{RawConn, RawTx};
use super::tx::{Arg, Exec, Row};
use super::{Dialect, Store, StoreError};

/// A connection kept by one commit loop.
pub(crate) enum WriteConn {
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>, Dialect),
    Raw(RawConn),
}

impl Store {
    /// Whether the store's writer runs on a thread of its own with its own connection
    /// (SQLite on a file): it must then be the only commit loop, and its calls block.
    pub(crate) fn writes_on_own_thread(&self) -> bool {
        self.sqlite_file.is_some()
    }

    /// The same store with the SQLite writer's page cache set to `kib` (a file import,
    /// which appends in large batches, is as fast with a quarter of the default and keeps
    /// the process smaller). Takes effect for writer connections opened afterwards.
    pub fn with_writer_cache_kib(mut self, kib: u32) -> Store {
        self.writer_cache_kib = kib;
        self
    }

    /// The WAL file the writer syncs itself before answering (SQLite on a file with
    /// `synchronous = "full"`): its connection then commits without syncing, so the next
    /// batch is written while the last one's sync runs (`pipeline::durable`).
    pub(crate) fn wal_synced_by_writer(&self) -> Option<std::path::PathBuf> {
        let file = self.sqlite_file.as_ref().filter(|_| self.synchronous_full)?;
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        Some(wal.into())
    }

    /// A connection for a commit loop. SQLite never checkpoints the WAL in a writer's
    /// commit: a checkpoint copies pages into the database file and syncs it, and would
    /// hold up every request waiting on that commit; the store's checkpointer does it
    /// beside the writer ([`super::checkpoint`]).
    pub(crate) async fn write_conn(&self) -> Result<WriteConn, StoreError> {
        use sqlx::Executor as _;
        if let Some(file) = &self.sqlite_file {
            // With `synchronous = "full"` the commit loop syncs the WAL before answering
            // (see `wal_synced_by_writer`): SQLite itself need not at every COMMIT.
            return Ok(WriteConn::Raw(RawConn::open(file, self.writer_cache_kib)?));
        }
        let mut c = self.pool.acquire().await?;
        if self.dialect == Dialect::Sqlite {
            c.execute("PRAGMA wal_autocheckpoint = 0").await?;
        }
        Ok(WriteConn::Pooled(c, self.dialect))
    }
}

impl WriteConn {
    /// Opens the write transaction the engine needs for check-then-insert to be exact.
    pub(crate) async fn begin(&mut self) -> Result<WriteTx<'_>, StoreError> {
        Ok(match self {
            WriteConn::Pooled(c, dialect) => {
                WriteTx::Pooled(super::commit::begin_write_on(*dialect, c).await?)
            }
            WriteConn::Raw(c) => WriteTx::Raw(c.begin()?),
        })
    }
}

/// A transaction on a [`WriteConn`]; rolled back when dropped uncommitted.
pub(crate) enum WriteTx<'c> {
    Pooled(sqlx::Transaction<'c, sqlx::Any>),
    Raw(RawTx<'c>),
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Pooled(tx) => Ok(tx.commit().await?),
            WriteTx::Raw(tx) => tx.commit(),
        }
    }
}

impl Exec for WriteTx<'_> {
    fn dialect(&self) -> Dialect {
        match self {
            WriteTx::Pooled(tx) => tx.dialect(),
            WriteTx::Raw(tx) => tx.dialect(),
        }
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        match self {
            WriteTx::Pooled(tx) => tx.execute(sql, args).await,
            WriteTx::Raw(tx) => tx.execute(sql, args).await,
        }
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        match self {
            WriteTx::Pooled(tx) => tx.fetch(sql, args).await,
            WriteTx::Raw(tx) => tx.fetch(sql, args).await,
        }
    }
}
