//! What a run cost PostgreSQL, from `pg_stat_statements` (preloaded by compose/postgres.sh):
//! statements and transactions per hold created, the catch-up reads of event streams among
//! them, and the statements called most. Counted from just before the load until every
//! hold and payment deadline has passed, so expiries and payments are in the figure.

use sqlx::PgPool;

/// Counters at the start of a run; `None` when `pg_stat_statements` is not loaded.
pub struct Baseline {
    commits: i64,
}

/// Resets the statement statistics; `None` (and a note) when they are unavailable.
pub async fn start(pool: &PgPool) -> Option<Baseline> {
    let created = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await
        .and(Ok(()));
    let reset = match created {
        Ok(()) => sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(pool)
            .await
            .map(|_| ()),
        Err(err) => Err(err),
    };
    if let Err(err) = reset {
        println!("statements per hold: not measured (pg_stat_statements unavailable: {err})");
        return None;
    }
    let commits = commits(pool).await.ok()?;
    Some(Baseline { commits })
}

async fn commits(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
}

/// A catch-up read: a statement that reads aggregates' events or snapshots (the store's
/// check of a unit that wrote nothing included; not the relay's feed, not an append).
const CATCH_UP: &str = "(query ILIKE '%FROM events%' OR query ILIKE '%JOIN events%'
        OR query ILIKE '%FROM snapshots%')
    AND query NOT ILIKE '%INSERT%' AND query NOT ILIKE '%transaction_id%'
    AND query NOT ILIKE '%count(%'";

/// Prints statements, transactions and catch-up reads per hold created since `start`.
pub async fn report(pool: &PgPool, baseline: &Baseline, holds: u64) -> anyhow::Result<()> {
    let holds = holds.max(1) as f64;
    let db = "dbid = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE {db}"
    ))
    .fetch_one(pool)
    .await?;
    let catch_up: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements WHERE {db} AND {CATCH_UP}"
    ))
    .fetch_one(pool)
    .await?;
    let commits = commits(pool).await? - baseline.commits;
    println!(
        "per hold created: {:.1} statements, {:.1} transactions, {:.2} catch-up reads of event streams",
        total as f64 / holds,
        commits as f64 / holds,
        catch_up as f64 / holds,
    );
    let top: Vec<(i64, f64, String)> = sqlx::query_as(&format!(
        "SELECT calls, total_exec_time, regexp_replace(left(query, 110), '\\s+', ' ', 'g')
           FROM pg_stat_statements WHERE {db} ORDER BY calls DESC LIMIT 15"
    ))
    .fetch_all(pool)
    .await?;
    println!("most called statements (calls per hold, total ms, statement):");
    for (calls, ms, query) in top {
        println!("  {:6.2} {:9.0}  {query}", calls as f64 / holds, ms);
    }
    Ok(())
}
