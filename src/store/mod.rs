//! The store: every submission, lead, event and dedupe key, in SQLite (the embedded
//! default) or PostgreSQL (scale-out).
//!
//! One implementation over sqlx's `Any` driver with a portable schema (text ids, unix-ms
//! timestamps, JSON as text); the few statements that differ per engine are chosen by
//! [`Dialect`]. Atomicity is the database's: the write path runs in one transaction per
//! batch (`BEGIN IMMEDIATE` on SQLite, advisory locks on the touched keys on PostgreSQL).

mod checkpoint;
pub mod console;
pub(crate) mod commit;
pub mod files;
pub mod email;
pub mod dispositions;
pub mod offers;
pub mod outbox;
mod raw;
mod reads;
pub mod review;
pub mod report;
pub(crate) mod routing;
pub(crate) mod tx;
mod vendors;
pub(crate) mod write_conn;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use reads::{EventRecord, LeadRecord, SubmissionFilter};
pub use vendors::{MetaFetch, MetaFetchRecord, NewMetaFetch};

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Errors from the store. Callers answer 5xx on these; the detail goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("corrupt stored JSON in {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
    #[error("the store is shut down")]
    Closed,
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored column {column}: {problem}")]
    Column { column: String, problem: String },
}

impl StoreError {
    /// Worth retrying the whole transaction (lock contention, serialization failure).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "6" | "517"))
            }
            StoreError::Database(sqlx::Error::PoolTimedOut) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            _ => false,
        }
    }
}

/// The SQLite writer's page cache: under HTTP load 8 and 2 MiB measured 15–25 % slower
/// than this (every commit touches pages in some twenty B-trees).
pub const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// Settings the store is opened with.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// SQLite: `synchronous=FULL` (durable on power loss) rather than NORMAL.
    pub synchronous_full: bool,
    pub max_connections: u32,
}

/// A handle to the database (cheap to clone).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite: the file, for the writer's own connection (`None` in memory).
    sqlite_file: Option<std::path::PathBuf>,
    synchronous_full: bool,
    /// SQLite: the writer connection's page cache, in KiB.
    writer_cache_kib: u32,
}

impl Store {
    /// Opens (creating the SQLite file and directory if needed) and migrates.
    pub async fn open(opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = dialect_of(&opts.url)?;
        if dialect == Dialect::Sqlite {
            ensure_sqlite_dir(&opts.url)?;
        }
        let url = match dialect {
            Dialect::Sqlite if !opts.url.contains('?') => format!("{}?mode=rwc", opts.url),
            _ => opts.url.clone(),
        };
        let connect = AnyConnectOptions::from_str(&url)?;
        let sync = if opts.synchronous_full { "FULL" } else { "NORMAL" };
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            // A broken connection fails its statement and is replaced; a ping before every
            // use would add a round trip to each commit.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // A 64 MiB page cache per connection keeps the indexes the write path
                        // probes (dedupe keys, ids) out of read() calls. (Not mmap: it remaps
                        // on every commit that grows the file.)
                        // 4 KiB pages for a new file (an existing one keeps its size): a
                        // commit dirties one page in each of some twenty B-trees plus one per
                        // new dedupe key (random places), and it writes and syncs all of them
                        // to the WAL; with 16 KiB pages that was ~770 KB per commit and the
                        // bytes, not the write calls, bounded it (4 KiB: +14 % leads/s with
                        // delivery, +20 % intake only, +9 % import, measured A B A B).
                        conn.execute("PRAGMA page_size = 4096").await?;
                        let pragmas = match sync {
                            "FULL" => "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
                            _ => "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
                        };
                        conn.execute(pragmas).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let sqlite_file = match dialect {
            Dialect::Sqlite => sqlite_path(&opts.url).map(std::path::PathBuf::from),
            Dialect::Postgres => None,
        };
        let store = Store {
            pool,
            dialect,
            sqlite_file,
            synchronous_full: opts.synchronous_full,
            writer_cache_kib: WRITER_CACHE_KIB,
        };
        store.migrate().await?;
        if dialect == Dialect::Sqlite {
            checkpoint::spawn(store.pool.clone());
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?,
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The engine a database URL names.
pub fn dialect_of(url: &str) -> Result<Dialect, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Dialect::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// The file a `sqlite:` URL names (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

fn ensure_sqlite_dir(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_path(url) else { return Ok(()) };
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
    }
    Ok(())
}

/// `($1, $2, $3), ($4, $5, $6)` (PostgreSQL) or `(?, ?, ?), (?, ?, ?)` (SQLite):
/// placeholders for a multi-row statement. SQLite gets anonymous `?`: sqlx binds a named
/// `$N` by asking SQLite for each parameter's name, a linear scan, so a statement with
/// many `$N` costs the square of its parameter count to bind.
pub(crate) fn value_rows(rows: usize, cols: usize, positional: bool) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            if positional {
                s.push('?');
            } else {
                s.push('$');
                s.push_str(&n.to_string());
            }
            n += 1;
        }
        s.push(')');
    }
    s
}

/// `$1, $2, …, $n` (or `?, ?, …` for SQLite, see [`value_rows`]).
pub(crate) fn param_list(n: usize, positional: bool) -> String {
    param_list_at(1, n, positional)
}

/// `$start, …` (or `?, ?, …` for SQLite): for a statement's second list of parameters.
pub(crate) fn param_list_at(start: usize, n: usize, positional: bool) -> String {
    if positional {
        vec!["?"; n].join(", ")
    } else {
        (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    }
}

/// Whether a connection wants anonymous `?` placeholders (SQLite).
pub(crate) fn positional(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(super::value_rows(2, 2, false), "($1, $2), ($3, $4)");
        assert_eq!(super::value_rows(2, 2, true), "(?, ?), (?, ?)");
        assert_eq!(super::param_list(3, false), "$1, $2, $3");
        assert_eq!(super::param_list(3, true), "?, ?, ?");
    }
}
