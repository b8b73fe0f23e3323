//! Commit outcomes are found out, never guessed. When the connection breaks while
//! `COMMIT` is in flight, the transaction may or may not have committed; these wait
//! until it is final and then read what really happened.

use std::time::Duration;

use sqlx::PgPool;

use super::model::CreatedBooking;
use crate::error::{Error, Result};

/// How long finding out an unknown commit outcome may take before the caller is
/// told it is unknown.
const SETTLE_DEADLINE: Duration = Duration::from_secs(4);
/// How long the server process of a broken `COMMIT` gets to finish on its own.
const SETTLE_GRACE: Duration = Duration::from_secs(1);

/// Waits until the server process that ran a transaction whose `COMMIT` went
/// unanswered has exited. From then on that transaction is final, committed or
/// not, and visible to every new one. A process that got the `COMMIT` finishes it
/// and exits on its own within moments (its client is gone); one that lingers
/// past [`SETTLE_GRACE`] (the network between us broke before `COMMIT` got there,
/// say) is ended: a commit it is in the middle of still completes, an open
/// transaction rolls back. Fails with `OutcomeUnknown` if the
/// database cannot be asked within [`SETTLE_DEADLINE`].
pub(super) async fn settle(pool: &PgPool, backend_pid: i32) -> Result<()> {
    let began = tokio::time::Instant::now();
    let attempt = async {
        loop {
            let gone = async {
                let mut conn = pool.acquire().await?;
                loop {
                    let alive: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                    )
                    .bind(backend_pid)
                    .fetch_one(&mut *conn)
                    .await?;
                    if !alive {
                        return Ok::<(), sqlx::Error>(());
                    }
                    if began.elapsed() >= SETTLE_GRACE {
                        sqlx::query("SELECT pg_terminate_backend($1)")
                            .bind(backend_pid)
                            .execute(&mut *conn)
                            .await?;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            match gone.await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot settle a commit yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    tokio::time::timeout(SETTLE_DEADLINE, attempt)
        .await
        .map_err(|_| Error::OutcomeUnknown)
}

/// After a `COMMIT` that went unanswered: waits until the transaction is final,
/// then answers each booking as it really ended. A booking id exists only if its
/// transaction committed (ids are never reused).
pub(super) async fn resolve(
    pool: &PgPool,
    backend_pid: i32,
    outcomes: Vec<Result<CreatedBooking>>,
) -> Vec<Result<CreatedBooking>> {
    let ids: Vec<i64> = outcomes.iter().flatten().map(|b| b.id).collect();
    let committed = async {
        settle(pool, backend_pid).await?;
        let found: Vec<i64> = sqlx::query_scalar("SELECT id FROM bookings WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        Ok::<bool, Error>(!found.is_empty())
    };
    match committed.await {
        // One transaction: its bookings were all written, or none was.
        Ok(true) => outcomes,
        Ok(false) => outcomes
            .into_iter()
            .map(|o| {
                o.and_then(|_| {
                    Err(Error::Unavailable(
                        "the connection broke during COMMIT; the booking was not made".into(),
                    ))
                })
            })
            .collect(),
        Err(e) => {
            e.log();
            outcomes
                .into_iter()
                .map(|o| o.and_then(|_| Err(Error::OutcomeUnknown)))
                .collect()
        }
    }
}
