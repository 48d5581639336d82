//! The typed transaction handle the write path runs on.
//!
//! The write path (group commit, attempt results, rerouting, claims) is written once,
//! against [`Exec`]: run a statement with bound [`Arg`]s, or fetch [`Row`]s read by column
//! name. Two handles implement it:
//!
//! - a sqlx transaction (`sqlx::Transaction<Any>`): PostgreSQL, and SQLite outside the
//!   writer (admin actions, claims);
//! - [`super::raw::RawTx`]: the SQLite writer's own connection, driven synchronously on its
//!   thread with cached prepared statements (no channel hop per statement).
//!
//! Statements use `$N` placeholders (or anonymous `?` on SQLite for multi-row statements,
//! see [`super::value_rows`]); both handles bind `$N` to the N-th argument.

use std::future::Future;
use std::sync::Arc;

use sqlx::{Any, AssertSqlSafe, Column as _, Row as _, TypeInfo as _, ValueRef as _};

use super::{Dialect, StoreError};

/// A bindable value (both handles take these on both engines).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Blob(Vec<u8>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One fetched row; columns are read by name.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(names: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { names, values }
    }

    /// The value of column `name`, converted; an error names the column when it is
    /// missing or of another type.
    pub(crate) fn get<T: FromValue>(&self, name: &str) -> Result<T, StoreError> {
        let i = self.names.iter().position(|n| n == name).ok_or_else(|| StoreError::Column {
            column: name.to_string(),
            problem: "no such column".into(),
        })?;
        let v = self.values.get(i).unwrap_or(&Value::Null);
        T::from_value(v).ok_or_else(|| StoreError::Column {
            column: name.to_string(),
            problem: format!("unexpected {v:?}"),
        })
    }
}

/// Types a [`Row`] column converts to.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.clone().into_bytes()),
            _ => None,
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// What the write path needs of a transaction.
///
/// Every call runs inside the caller's transaction; the caller commits. The futures of the
/// SQLite writer's handle are ready at once (the work is done synchronously on its thread).
pub(crate) trait Exec: Send {
    fn dialect(&self) -> Dialect;

    /// Whether statements take anonymous `?` placeholders (SQLite, see [`super::value_rows`]).
    fn positional(&self) -> bool {
        self.dialect() == Dialect::Sqlite
    }

    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Runs a query and returns its rows.
    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// The first row of a query, if any.
    fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send {
        async move { Ok(self.fetch(sql, args).await?.into_iter().next()) }
    }
}

fn bind<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    arg: Arg,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    match arg {
        Arg::Text(v) => q.bind(v),
        Arg::OptText(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::OptInt(v) => q.bind(v),
        Arg::Blob(v) => q.bind(v),
    }
}

impl Exec for sqlx::Transaction<'_, Any> {
    fn dialect(&self) -> Dialect {
        if super::positional(self) { Dialect::Sqlite } else { Dialect::Postgres }
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
        for a in args {
            q = bind(q, a);
        }
        Ok(q.execute(&mut **self).await?.rows_affected())
    }

    async fn fetch(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
        for a in args {
            q = bind(q, a);
        }
        let rows = q.fetch_all(&mut **self).await?;
        let Some(first) = rows.first() else { return Ok(Vec::new()) };
        let names: Arc<[String]> = first.columns().iter().map(|c| c.name().to_string()).collect();
        rows.iter().map(|r| any_row(r, &names)).collect()
    }
}

/// Converts a sqlx row by its values' types (the `Any` driver's few kinds).
fn any_row(r: &sqlx::any::AnyRow, names: &Arc<[String]>) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(names.len());
    for i in 0..names.len() {
        let raw = r.try_get_raw(i)?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let v = match raw.type_info().name() {
            "BOOLEAN" => Value::Int(i64::from(r.try_get::<bool, _>(i)?)),
            "SMALLINT" | "INTEGER" | "BIGINT" => Value::Int(r.try_get::<i64, _>(i)?),
            "REAL" | "DOUBLE" => Value::Real(r.try_get::<f64, _>(i)?),
            "BLOB" => Value::Blob(r.try_get::<Vec<u8>, _>(i)?),
            _ => Value::Text(r.try_get::<String, _>(i)?),
        };
        values.push(v);
    }
    Ok(Row::new(names.clone(), values))
}
