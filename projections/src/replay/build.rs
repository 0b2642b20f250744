//! Reading the store once for every model being rebuilt: the gap-safe feed in large
//! batches, each batch decoded once and handed to every model's fold, each model folding on
//! its own thread. Reading, decoding and folding overlap: the next batch is read while the
//! last one is decoded, and decoded batches queue for the folds.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use plumbing::feed::{Cursor, Filter, RawEvent, next_raw};
use sqlx::PgConnection;
use tokio::sync::mpsc;

use super::progress::Progress;
use super::rebuild::Rebuilder;
use crate::fold::Fact;

/// Decodes stored events; an undecodable one is skipped, as the live consumer
/// dead-letters it.
pub fn decode(raw: Vec<RawEvent>) -> Vec<Fact> {
    raw.into_iter()
        .filter_map(|row| {
            match schemas::decode::decode_stored(
                &row.aggregate_type,
                &row.event_type,
                &row.event_version,
                &row.payload,
            ) {
                Ok(event) => Some(Fact {
                    aggregate_type: row.aggregate_type,
                    aggregate_id: row.aggregate_id,
                    sequence: row.sequence,
                    event,
                }),
                Err(err) => {
                    tracing::warn!(error = %err, aggregate_id = %row.aggregate_id,
                        sequence = row.sequence, "undecodable event skipped");
                    None
                }
            }
        })
        .collect()
}

/// A model folding on its own thread.
struct Folding {
    queue: mpsc::Sender<Arc<Vec<Fact>>>,
    thread: JoinHandle<Box<dyn Rebuilder>>,
}

fn start(mut rebuilder: Box<dyn Rebuilder>) -> Folding {
    let (queue, mut batches) = mpsc::channel::<Arc<Vec<Fact>>>(4);
    let thread = std::thread::spawn(move || {
        while let Some(batch) = batches.blocking_recv() {
            rebuilder.fold(&batch);
        }
        rebuilder
    });
    Folding { queue, thread }
}

/// Folds every event `filter` selects after `cursor` into `rebuilders`, reading `batch`
/// events per statement until the feed has nothing more below its horizon; returns the
/// cursor after the last event read.
pub async fn fold_store(
    conn: &mut PgConnection,
    rebuilders: Vec<Box<dyn Rebuilder>>,
    mut cursor: Cursor,
    filter: &Filter,
    batch: i64,
    progress: &Progress,
) -> anyhow::Result<(Cursor, Vec<Box<dyn Rebuilder>>)> {
    let started = Instant::now();
    let folds: Vec<Folding> = rebuilders.into_iter().map(start).collect();
    let mut decoding: Option<tokio::task::JoinHandle<Vec<Fact>>> = None;
    let mut reading = Duration::ZERO;
    loop {
        let read_started = Instant::now();
        let raw = next_raw(&mut *conn, &cursor, batch, filter).await?;
        reading += read_started.elapsed();
        if let Some(last) = raw.last() {
            cursor = Cursor {
                transaction_id: last.transaction_id.clone(),
                global_position: last.global_position,
            };
        }
        let read = raw.len();
        progress.read(read as u64);
        if let Some(decoded) = decoding.take() {
            hand_over(&folds, decoded.await?).await?;
        }
        if read == 0 {
            break;
        }
        decoding = Some(tokio::task::spawn_blocking(move || decode(raw)));
        if read < usize::try_from(batch).unwrap_or(usize::MAX) {
            if let Some(decoded) = decoding.take() {
                hand_over(&folds, decoded.await?).await?;
            }
            break;
        }
    }
    let folded = Instant::now();
    let mut rebuilders = Vec::with_capacity(folds.len());
    for fold in folds {
        drop(fold.queue);
        let thread = fold.thread;
        let rebuilder = tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("a model's fold panicked"))?;
        rebuilders.push(rebuilder);
    }
    // Where a rebuild's time goes, for profiling: reading the store (the rest of the
    // time the reader waited for decoding and the folds), and the folds after the last read.
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        reading = reading.as_secs_f64(),
        folds_after_last_read = folded.elapsed().as_secs_f64(),
        "store read and folded"
    );
    Ok((cursor, rebuilders))
}

async fn hand_over(folds: &[Folding], facts: Vec<Fact>) -> anyhow::Result<()> {
    let facts = Arc::new(facts);
    for fold in folds {
        fold.queue
            .send(Arc::clone(&facts))
            .await
            .ok()
            .context("a model's fold stopped")?;
    }
    Ok(())
}
