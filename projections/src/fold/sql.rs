//! The engine's SQL, the same for every table: load rows by key or group (one statement),
//! write a batch's changes (one statement: the deletes and the upserts together), and
//! `COPY` new rows in. Rows travel as JSON objects whose fields are columns, so none of this
//! names a column of a particular table; tables are unqualified and resolved through the
//! search path (the live schema, or a replay's scratch schema).

use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::io::{Changes, Missing};

/// The columns of a JSON object, quoted.
fn columns(object: Option<&Value>) -> Vec<String> {
    object
        .and_then(Value::as_object)
        .map(|fields| fields.keys().map(|c| format!("\"{c}\"")).collect())
        .unwrap_or_default()
}

/// `(x."a", x."b") = (k."a", k."b")`
fn matching(columns: &[String], left: &str, right: &str) -> String {
    let side = |alias: &str| {
        columns
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) = ({})", side(left), side(right))
}

/// The stored rows of `table` that `missing` names, as JSON objects. One `LATERAL` probe per
/// key, whatever the table's statistics when the pool planned the statement (once, generic:
/// a join planned on an empty table stays a sequential scan as the table grows).
pub async fn load(
    conn: &mut PgConnection,
    table: &str,
    missing: &Missing,
) -> Result<Vec<Value>, sqlx::Error> {
    let mut parts = Vec::new();
    let by_key = columns(missing.keys.first());
    if !by_key.is_empty() {
        parts.push(format!(
            "SELECT to_jsonb(x) FROM jsonb_populate_recordset(NULL::{table}, $1) k
              CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE {}) x",
            matching(&by_key, "x", "k")
        ));
    }
    let by_group = columns(missing.groups.first());
    if !by_group.is_empty() {
        parts.push(format!(
            "SELECT to_jsonb(x) FROM jsonb_populate_recordset(NULL::{table}, $2) g
              CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE {}) x",
            matching(&by_group, "x", "g")
        ));
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(&parts.join(" UNION ALL "))
        .bind(Json(&missing.keys))
        .bind(Json(&missing.groups))
        .fetch_all(conn)
        .await
}

/// Writes the deletes and upserts of `changes` to `table` in one statement (its `COPY`
/// text, if any, is the caller's: see `copy_in`).
pub async fn write(
    conn: &mut PgConnection,
    table: &str,
    changes: &Changes,
) -> Result<(), sqlx::Error> {
    if changes.upserts.is_empty() && changes.deletes.is_empty() {
        return Ok(());
    }
    let key = &changes.key_columns;
    let delete = format!(
        "DELETE FROM {table} x USING jsonb_populate_recordset(NULL::{table}, $1) k WHERE {}",
        matching(key, "x", "k")
    );
    let statement = if changes.upserts.is_empty() {
        delete
    } else {
        let all = columns(changes.upserts.first());
        let others: Vec<&String> = all.iter().filter(|c| !key.contains(c)).collect();
        let on_conflict = if others.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!(
                "DO UPDATE SET ({}) = ROW({})",
                others
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                others
                    .iter()
                    .map(|c| format!("EXCLUDED.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let upsert = format!(
            "INSERT INTO {table} ({cols}) SELECT {cols}
               FROM jsonb_populate_recordset(NULL::{table}, $2)
             ON CONFLICT ({key}) {on_conflict}",
            cols = all.join(", "),
            key = key.join(", "),
        );
        if changes.deletes.is_empty() {
            upsert
        } else {
            // Deleted and upserted keys are disjoint, so the two never touch one row.
            format!("WITH gone AS ({delete}) {upsert}")
        }
    };
    sqlx::query(&statement)
        .bind(Json(&changes.deletes))
        .bind(Json(&changes.upserts))
        .execute(conn)
        .await?;
    Ok(())
}

/// Streams `COPY` text into `statement`.
pub async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await
}
