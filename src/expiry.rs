//! The expiry worker: turns holds past their deadline into EXPIRED bookings and
//! frees their seats, within moments of the deadline.
//!
//! It sleeps until the earliest deadline in the database rather than polling, and
//! wakes early when this instance makes a hold (which may be earlier still). Holds
//! made by other instances are swept by those instances' workers; `MAX_SLEEP` bounds
//! how long a hold of an instance that died can outlive its deadline here. Sweeps use
//! `FOR UPDATE SKIP LOCKED`, so instances never wait for each other or sweep twice.
//! The same worker forgets idempotency answers older than a day.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, watch};

use crate::booking::{self, BookingStatus};

/// The longest the worker sleeps without looking at the database.
const MAX_SLEEP: Duration = Duration::from_secs(5);
/// How often remembered idempotency answers past their day are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Bookings expired per transaction, to keep each one short.
const BATCH: i64 = 500;

pub struct ExpiryWorker {
    pool: PgPool,
    new_hold: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
}

impl ExpiryWorker {
    pub fn new(
        pool: PgPool,
        new_hold: Arc<Notify>,
        shutdown: watch::Receiver<bool>,
    ) -> ExpiryWorker {
        ExpiryWorker {
            pool,
            new_hold,
            shutdown,
        }
    }

    /// Runs until shutdown is signalled.
    pub async fn run(mut self) {
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            // Remembered idempotency answers expire too, checked once a minute.
            if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                last_purge = Some(tokio::time::Instant::now());
                match booking::idempotency::purge(&self.pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "forgot expired idempotency keys"),
                    Err(e) => tracing::warn!(error = %e, "idempotency key purge failed"),
                }
            }
            let wait = match self.sweep_and_plan().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "expiry sweep failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.new_hold.notified() => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// Expires everything that is due, then returns how long to sleep.
    async fn sweep_and_plan(&self) -> anyhow::Result<Duration> {
        while sweep(&self.pool, BATCH).await? == BATCH as usize {}
        // The wait is computed by the database, so the app's clock does not matter.
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM min(expires_at) - clock_timestamp())::float8
             FROM bookings WHERE status = 'PENDING'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(match secs {
            // Still due right after a sweep: another transaction holds it (SKIP LOCKED).
            Some(s) if s <= 0.0 => Duration::from_millis(100),
            // A millisecond of slack so that the sweep finds the hold already due.
            Some(s) => Duration::from_secs_f64(s + 0.001).min(MAX_SLEEP),
            None => MAX_SLEEP,
        })
    }
}

/// Expires up to `limit` due holds in one transaction; returns how many.
pub async fn sweep(pool: &PgPool, limit: i64) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    // With how late each hold is: the worker's promise is "within a second".
    let due: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT id, extract(epoch FROM clock_timestamp() - expires_at)::float8 FROM bookings
         WHERE status = 'PENDING' AND expires_at <= now()
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let (due, lateness): (Vec<i64>, Vec<f64>) = due.into_iter().unzip();
    booking::release(&mut tx, &due, BookingStatus::Expired).await?;
    tx.commit().await?;
    let late = metrics::histogram!(crate::monitoring::EXPIRY_LATENESS);
    lateness.into_iter().for_each(|s| late.record(s.max(0.0)));
    tracing::info!(count = due.len(), "expired holds");
    Ok(due.len())
}
