//! Moving an embedded deployment onto PostgreSQL: every row of the SQLite file, copied into
//! an empty PostgreSQL schema at the same migration version, ids and all.
//!
//! Written generically over the catalog (tables, column types, foreign keys read from
//! PostgreSQL) so that a new migration needs no change here. Rows are inserted parents
//! first; where foreign keys form a cycle (accounts and organizations name each other) the
//! cycle's columns are inserted empty and set once both sides exist. All of it is one
//! transaction: a failed copy leaves the target empty. The outbox rows move with their
//! delivery state and receipts, and the ledger's own tables (`ledger_*`, filled from its
//! file by [`crate::ledger_pg::copy_file_ledger`]) are left to it, so the ledger neither
//! loses nor repeats an entry.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{StoreError, StoreResult};

/// What [`sqlite_to_postgres`] copied: rows per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub rows: BTreeMap<String, u64>,
}

impl CopyReport {
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }
}

struct Column {
    name: String,
    data_type: String,
}

/// A foreign key column: `table.column` references `target`.
struct ForeignKey {
    table: String,
    column: String,
    target: String,
}

/// Copies every row of `from` into `to`, which must be migrated and empty. Both are first
/// brought to the latest schema, so their tables match.
pub async fn sqlite_to_postgres(from: &SqliteStore, to: &PgStore) -> StoreResult<CopyReport> {
    from.migrate().await?;
    to.migrate().await?;
    let mut tx = to.pool().begin().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename <> '_sqlx_migrations' AND tablename NOT LIKE 'ledger\\_%' \
         ORDER BY tablename",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&mut *tx)
    .await?
    {
        columns.entry(row.try_get("t")?).or_default().push(Column {
            name: row.try_get("c")?,
            data_type: row.try_get("d")?,
        });
    }
    let foreign_keys: Vec<ForeignKey> = sqlx::query(
        "SELECT c.conrelid::regclass::text AS t, a.attname::text AS c, \
         c.confrelid::regclass::text AS r FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
    )
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| {
        Ok(ForeignKey {
            table: row.try_get("t")?,
            column: row.try_get("c")?,
            target: row.try_get("r")?,
        })
    })
    .collect::<StoreResult<_>>()?;

    for table in &tables {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 {
            return Err(StoreError::Conflict(format!(
                "the PostgreSQL database is not empty (table {table} holds {count} row(s)): \
                 copy into an empty schema"
            )));
        }
    }

    let mut report = CopyReport::default();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    // Columns inserted empty because their target table was not copied yet:
    // (table, column, id, value).
    let mut deferred: Vec<(String, String, i64, i64)> = Vec::new();
    while copied.len() < tables.len() {
        let waiting = |table: &String| {
            foreign_keys
                .iter()
                .any(|fk| &fk.table == table && fk.target != *table && !copied.contains(&fk.target))
        };
        let pending: Vec<&String> = tables.iter().filter(|t| !copied.contains(*t)).collect();
        // Parents first; in a cycle, the first table waiting, with its forward references
        // deferred.
        let (table, defer_to) = match pending.iter().find(|t| !waiting(t)) {
            Some(table) => (*table, BTreeSet::new()),
            None => {
                let table = pending[0];
                let later: BTreeSet<String> = foreign_keys
                    .iter()
                    .filter(|fk| &fk.table == table && !copied.contains(&fk.target))
                    .map(|fk| fk.column.clone())
                    .collect();
                (table, later)
            }
        };
        let table_columns = columns
            .get(table)
            .ok_or_else(|| StoreError::Corrupt(format!("table {table} has no columns")))?;
        let rows = copy_table(
            from,
            &mut tx,
            table,
            table_columns,
            &defer_to,
            &mut deferred,
        )
        .await?;
        report.rows.insert(table.clone(), rows);
        copied.insert(table.clone());
    }
    for (table, column, id, value) in &deferred {
        sqlx::query(&format!("UPDATE {table} SET {column} = $2 WHERE id = $1"))
            .bind(id)
            .bind(value)
            .execute(&mut *tx)
            .await?;
    }
    // New rows continue after the copied ids.
    for (table, table_columns) in &columns {
        if table_columns.iter().any(|c| c.name == "id") && tables.contains(table) {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table} \
                 WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL"
            ))
            .fetch_all(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Copies one table's rows; columns in `defer` are inserted empty and queued in `deferred`.
async fn copy_table(
    from: &SqliteStore,
    tx: &mut sqlx::PgConnection,
    table: &str,
    columns: &[Column],
    defer: &BTreeSet<String>,
    deferred: &mut Vec<(String, String, i64, i64)>,
) -> StoreResult<u64> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let select = format!("SELECT {} FROM {table}", names.join(", "));
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        placeholders.join(", ")
    );
    let rows = sqlx::query(&select).fetch_all(from.pool()).await?;
    for row in &rows {
        let mut query = sqlx::query(&insert);
        for column in columns {
            let name = column.name.as_str();
            // Unchecked reads: SQLite stores by value, not by declared type (a REAL column
            // may hold an integer); the PostgreSQL column type decides what is bound.
            if defer.contains(name) {
                if let Some(value) = row.try_get_unchecked::<Option<i64>, _>(name)? {
                    let id: i64 = row.try_get_unchecked("id")?;
                    deferred.push((table.to_owned(), name.to_owned(), id, value));
                }
                query = query.bind(None::<i64>);
                continue;
            }
            query = match column.data_type.as_str() {
                "bigint" | "integer" | "smallint" => {
                    query.bind(row.try_get_unchecked::<Option<i64>, _>(name)?)
                }
                "double precision" | "real" => {
                    query.bind(row.try_get_unchecked::<Option<f64>, _>(name)?)
                }
                "boolean" => query.bind(
                    row.try_get_unchecked::<Option<i64>, _>(name)?
                        .map(|v| v != 0),
                ),
                "bytea" => query.bind(row.try_get_unchecked::<Option<Vec<u8>>, _>(name)?),
                "text" | "character varying" => {
                    query.bind(row.try_get_unchecked::<Option<String>, _>(name)?)
                }
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "{table}.{name} has type {other}, which the copy does not know"
                    )));
                }
            };
        }
        query.execute(&mut *tx).await?;
    }
    Ok(rows.len() as u64)
}
