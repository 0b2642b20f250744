//! The same-machine reference: `pgbench` against the platform's PostgreSQL with a script
//! that writes what one hold writes — one event row for the section inventory and one for
//! the booking, each in its own durable transaction (that is how the two aggregates commit),
//! ~300-byte JSON payloads, into a table shaped like `events` (same columns, identity,
//! defaults and indexes). Our hold rate is then printed as a ratio of pgbench's.

use std::io::Write;
use std::process::Command;

use anyhow::{Context, bail};
use sqlx::PgPool;

const TABLE: &str = "pgbench_hold_events";

fn script() -> String {
    let payload = serde_json::json!({"HoldPlaced": {
        "booking_id": "5a1c3e0e-6b7d-4a55-9d27-0c1f7a0d6a11",
        "seats": ["stalls:A:11", "stalls:A:12", "stalls:A:13"],
        "general_admission": 0,
        "expires_at": "2026-11-25T12:00:00Z",
        "user_id": "2f3d7c8a-1b4e-4f0a-8c6d-9e1a2b3c4d5e",
        "note": "padding to the size of a real hold event payload........"}});
    let metadata = serde_json::json!({"correlation_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "user_id": "2f3d7c8a-1b4e-4f0a-8c6d-9e1a2b3c4d5e"});
    let insert = |aggregate: &str, event: &str| {
        format!(
            "INSERT INTO {TABLE} (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ('{aggregate}', \
             '{aggregate}-' || :id, 1, '{event}', '1.0', '{payload}', '{metadata}');"
        )
    };
    format!(
        "\\set id random(1, 1000000000000)\nBEGIN;\n{}\nCOMMIT;\nBEGIN;\n{}\nCOMMIT;\n",
        insert("inventory", "HoldPlaced"),
        insert("booking", "BookingPlaced")
    )
}

/// Runs the reference for `seconds` at `clients` connections; returns script runs per
/// second (one run = what one hold writes).
pub async fn reference(
    pool: &PgPool,
    database_url: &str,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {TABLE}"))
        .execute(pool)
        .await?;
    sqlx::query(&format!("CREATE TABLE {TABLE} (LIKE events INCLUDING ALL)"))
        .execute(pool)
        .await?;
    let mut file = tempfile()?;
    file.1.write_all(script().as_bytes())?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.clamp(1, 2).to_string(),
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&file.0)
        .arg(database_url)
        .output()
        .context("running pgbench (Debian package postgresql-client)")?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {TABLE}"))
        .execute(pool)
        .await?;
    std::fs::remove_file(&file.0).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench output: {stdout}"))?;
    println!(
        "pgbench reference: {tps:.0} hold-equivalents/s ({clients} clients, {seconds} s, \
         2 durable transactions of one ~300-byte event row each)"
    );
    Ok(tps)
}

fn tempfile() -> anyhow::Result<(std::path::PathBuf, std::fs::File)> {
    let path = std::env::temp_dir().join(format!("loadgen-hold-{}.sql", std::process::id()));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}
