//! Group commit for bookings. Each show has a queue; a few workers per show take
//! whatever is waiting in it (up to `MAX_BATCH`) and book it in one transaction.
//!
//! Why: every transaction that sends a NOTIFY commits while holding a cluster-wide
//! lock, so one booking per transaction caps throughput at the commit rate. Batching
//! amortises the commit, the NOTIFY and the statements over many bookings. A worker
//! never waits to fill a batch: with one request queued, it books that one at once,
//! so an idle server adds no latency.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::batch::{self, Wanted};
use super::{BookRequest, CreatedBooking};
use crate::error::{Error, Result};

/// Most bookings in one transaction.
const MAX_BATCH: usize = 64;
/// Transactions in flight per show and instance. More than one keeps the database
/// busy while a batch commits; conflicts between them are settled by row locks.
const WORKERS_PER_SHOW: usize = 2;
/// Requests waiting per show before callers wait to enqueue.
const QUEUE: usize = 4096;

struct Job {
    req: BookRequest,
    token: String,
    reply: oneshot::Sender<Result<CreatedBooking>>,
}

#[derive(Clone)]
pub(super) struct Executor {
    pool: PgPool,
    hold_ttl: Duration,
    queues: Arc<DashMap<i64, mpsc::Sender<Job>>>,
}

impl Executor {
    pub(super) fn new(pool: PgPool, hold_ttl: Duration) -> Executor {
        Executor {
            pool,
            hold_ttl,
            queues: Arc::new(DashMap::new()),
        }
    }

    pub(super) async fn book(
        &self,
        show_id: i64,
        req: BookRequest,
        token: String,
    ) -> Result<CreatedBooking> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue(show_id);
        if queue.send(Job { req, token, reply }).await.is_err() {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "the booking queue of show {show_id} is closed"
            )));
        }
        answer
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("a booking worker stopped")))?
    }

    /// The show's queue, starting its workers on first use. They live as long as
    /// the queue, which lives as long as this executor.
    fn queue(&self, show_id: i64) -> mpsc::Sender<Job> {
        self.queues
            .entry(show_id)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let rx = Arc::new(Mutex::new(rx));
                for _ in 0..WORKERS_PER_SHOW {
                    tokio::spawn(work(self.pool.clone(), show_id, self.hold_ttl, rx.clone()));
                }
                tx
            })
            .clone()
    }
}

async fn work(
    pool: PgPool,
    show_id: i64,
    hold_ttl: Duration,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        // Hold the queue only while taking a batch, so the other worker can take the
        // next one while this one is in the database.
        if queue.lock().await.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        run(&pool, show_id, hold_ttl, std::mem::take(&mut jobs)).await;
    }
}

async fn run(pool: &PgPool, show_id: i64, hold_ttl: Duration, jobs: Vec<Job>) {
    let wanted: Vec<Wanted> = jobs
        .iter()
        .map(|j| Wanted {
            req: &j.req,
            token: &j.token,
        })
        .collect();
    let result = batch::book(pool, show_id, &wanted, hold_ttl).await;
    drop(wanted);
    match result {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        // The whole transaction failed. Retry one by one, so that whatever caused it
        // fails only the booking it belongs to.
        Err(e) if jobs.len() > 1 => {
            tracing::warn!(error = %e, size = jobs.len(), "a booking batch failed; retrying its bookings one by one");
            for job in jobs {
                let wanted = [Wanted {
                    req: &job.req,
                    token: &job.token,
                }];
                let outcome = match batch::book(pool, show_id, &wanted, hold_ttl).await {
                    Ok(mut one) => one
                        .pop()
                        .unwrap_or_else(|| Err(Error::Unexpected(anyhow::anyhow!("empty batch")))),
                    Err(e) => Err(e),
                };
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}
