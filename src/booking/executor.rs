//! Group commit for bookings. Each show that is being booked has a queue; a few
//! workers per show take whatever is waiting in it (up to `MAX_BATCH`) and book it
//! in one transaction.
//!
//! Why: every transaction that sends a NOTIFY commits while holding a cluster-wide
//! lock, so one booking per transaction caps throughput at the commit rate. Batching
//! amortises the commit, the NOTIFY and the statements over many bookings. A worker
//! never waits to fill a batch: with one request queued, it books that one at once,
//! so an idle server adds no latency.
//!
//! The executor is supervised: a queue exists only for a show that exists, and
//! retires (workers and all) after `BOOKING_QUEUE_IDLE_SECS` without work; every
//! wait a caller makes has a deadline; workers are tracked and stop with
//! [`Executor::shutdown`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::batch::{self, Failure, Order, Seating};
use super::idempotency::Keyed;
use super::model::CreatedBooking;
use super::outcome;
use super::request::{BookRequest, SeatChoice};
use super::seat_index::SeatIndex;
use crate::config::{BookingRules, BuyerLimits};
use crate::error::{Error, Result};
use crate::hall::{Hall, PriceList};

/// Most bookings in one transaction.
const MAX_BATCH: usize = 64;
/// Transactions in flight per show and instance. More than one keeps the database
/// busy while a batch commits; conflicts between them are settled by row locks.
const WORKERS_PER_SHOW: usize = 2;
/// Requests waiting per show.
const QUEUE: usize = 4096;
/// How long a caller may wait for room in a full queue.
const ENQUEUE_DEADLINE: Duration = Duration::from_secs(1);
/// A booking not started this long after it arrived is refused unstarted (503
/// `DATABASE_UNAVAILABLE`: the database is not keeping up, or not there). With the
/// pool's 3 s acquire timeout, every caller hears back within about 4 s.
const START_DEADLINE: Duration = Duration::from_secs(1);

struct Job {
    req: BookRequest,
    token: String,
    keyed: Option<Keyed>,
    arrived: Instant,
    reply: oneshot::Sender<Result<CreatedBooking>>,
}

/// A show's queue, as callers see it. `generation` tells a retired queue from the
/// one that replaced it.
#[derive(Clone)]
struct ShowQueue {
    tx: mpsc::Sender<Job>,
    generation: u64,
}

#[derive(Clone)]
pub(super) struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    hold_ttl: Duration,
    limits: BuyerLimits,
    /// A show's queue and workers go away after this long without bookings.
    idle: Duration,
    queues: DashMap<i64, ShowQueue>,
    /// Shows known to exist. Shows are never deleted, so a hit needs no query;
    /// unknown ids are not remembered, so they cost no memory.
    known_shows: DashSet<i64>,
    /// Layouts of shows with a live queue that were asked for best-available seats.
    halls: DashMap<i64, Arc<Hall>>,
    /// Prices of shows with a live queue.
    prices: DashMap<i64, Arc<PriceList>>,
    /// Seat ids by number, of shows with a live queue.
    seat_ids: DashMap<i64, Arc<SeatIndex>>,
    generations: AtomicU64,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Executor {
    pub(super) fn new(pool: PgPool, rules: &BookingRules) -> Executor {
        Executor {
            inner: Arc::new(Inner {
                pool,
                hold_ttl: rules.hold_ttl,
                limits: rules.buyer_limits,
                idle: rules.queue_idle,
                queues: DashMap::new(),
                known_shows: DashSet::new(),
                halls: DashMap::new(),
                prices: DashMap::new(),
                seat_ids: DashMap::new(),
                generations: AtomicU64::new(0),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    pub(super) async fn book(
        &self,
        show_id: i64,
        req: BookRequest,
        token: String,
        keyed: Option<Keyed>,
    ) -> Result<CreatedBooking> {
        self.ensure_show(show_id).await?;
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            req,
            token,
            keyed,
            arrived: Instant::now(),
            reply,
        };
        let deadline = job.arrived + ENQUEUE_DEADLINE;
        loop {
            let queue = self.queue(show_id)?;
            match tokio::time::timeout_at(deadline, queue.tx.send(job)).await {
                Ok(Ok(())) => break,
                // The queue retired between our lookup and our send: use the new one.
                Ok(Err(mpsc::error::SendError(returned))) => {
                    self.inner
                        .queues
                        .remove_if(&show_id, |_, q| q.generation == queue.generation);
                    job = returned;
                }
                Err(_) => return Err(Error::Busy),
            }
        }
        // A worker answers every job it takes, within its own deadlines.
        answer
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("a booking worker stopped")))?
    }

    /// Per-show state is made only for shows that exist: unknown ids get 404 here,
    /// before anything is queued or spawned.
    pub(super) async fn ensure_show(&self, show_id: i64) -> Result<()> {
        if self.inner.known_shows.contains(&show_id) {
            return Ok(());
        }
        crate::shows::ensure_exists(&self.inner.pool, show_id).await?;
        self.inner.known_shows.insert(show_id);
        Ok(())
    }

    /// The show's queue, starting its workers if it has none.
    fn queue(&self, show_id: i64) -> Result<ShowQueue> {
        let inner = &self.inner;
        if inner.stop.is_cancelled() {
            return Err(Error::Unavailable("the server is shutting down".into()));
        }
        Ok(inner
            .queues
            .entry(show_id)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let rx = Arc::new(Mutex::new(rx));
                let generation = inner.generations.fetch_add(1, Ordering::Relaxed);
                for _ in 0..WORKERS_PER_SHOW {
                    let worker = Worker {
                        inner: self.inner.clone(),
                        show_id,
                        generation,
                        rx: rx.clone(),
                    };
                    inner.tasks.spawn(worker.run());
                }
                ShowQueue { tx, generation }
            })
            .clone())
    }

    /// Shows with a live queue (for tests).
    pub(super) fn active_shows(&self) -> usize {
        self.inner.queues.len()
    }

    /// Stops taking bookings, lets the workers finish what is queued, and waits for
    /// them (up to `limit`).
    pub(super) async fn shutdown(&self, limit: Duration) -> bool {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        tokio::time::timeout(limit, self.inner.tasks.wait())
            .await
            .is_ok()
    }
}

struct Worker {
    inner: Arc<Inner>,
    show_id: i64,
    generation: u64,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl Worker {
    async fn run(self) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        loop {
            // Hold the queue only while taking a batch, so the other worker can take
            // the next one while this one is in the database.
            let taken = {
                let mut rx = self.rx.lock().await;
                tokio::select! {
                    // Once the queue is closed this is always ready: it drains first.
                    biased;
                    n = rx.recv_many(&mut jobs, MAX_BATCH) => n,
                    _ = tokio::time::sleep(self.inner.idle) => { self.retire(&mut rx); continue }
                    _ = self.inner.stop.cancelled() => { self.retire(&mut rx); continue }
                }
            };
            if taken == 0 {
                return; // retired, and everything queued before that is answered
            }
            self.run_batch(std::mem::take(&mut jobs)).await;
        }
    }

    /// Takes the queue out of the map and closes it: callers that still hold it get
    /// their job back and make a new queue; what is already queued is still served.
    fn retire(&self, rx: &mut mpsc::Receiver<Job>) {
        let generation = self.generation;
        self.inner
            .queues
            .remove_if(&self.show_id, |_, q| q.generation == generation);
        self.inner.halls.remove(&self.show_id);
        self.inner.prices.remove(&self.show_id);
        self.inner.seat_ids.remove(&self.show_id);
        rx.close();
    }

    async fn run_batch(&self, jobs: Vec<Job>) {
        // Jobs that waited too long are refused unstarted, so nobody waits forever
        // behind a database that does not answer.
        let (jobs, late): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.arrived.elapsed() < START_DEADLINE);
        for job in late {
            let error = Error::Unavailable("the database did not take the booking in time".into());
            let _ = job.reply.send(Err(error));
        }
        if jobs.is_empty() {
            return;
        }
        metrics::histogram!(crate::monitoring::BATCH_SIZE).record(jobs.len() as f64);
        let outcomes = self.book(&jobs).await;
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }

    /// What never changes about the show (its layout, prices, seat ids), read
    /// once while its queue lives and kept in `cache`.
    async fn cached<T, F>(&self, cache: &DashMap<i64, Arc<T>>, read: F) -> Result<Arc<T>>
    where
        F: Future<Output = Result<T>>,
    {
        if let Some(known) = cache.get(&self.show_id) {
            return Ok(known.clone());
        }
        let value = Arc::new(read.await?);
        cache.insert(self.show_id, value.clone());
        Ok(value)
    }

    /// Books the jobs as one batch; each gets its own answer.
    async fn book(&self, jobs: &[Job]) -> Vec<Result<CreatedBooking>> {
        let inner = &self.inner;
        let (pool, show_id) = (&inner.pool, self.show_id);
        let best = jobs
            .iter()
            .any(|j| matches!(j.req.seats, SeatChoice::Best(_)));
        let seating = async {
            let prices = self.cached(&inner.prices, PriceList::load(pool, show_id));
            let seat_ids = self.cached(&inner.seat_ids, SeatIndex::load(pool, show_id));
            let (prices, seat_ids) = tokio::try_join!(prices, seat_ids)?;
            let hall = if best {
                Some(
                    self.cached(&inner.halls, crate::hall::load(pool, show_id))
                        .await?,
                )
            } else {
                None
            };
            Ok::<_, Error>((prices, seat_ids, hall))
        };
        let (prices, seat_ids, hall) = match seating.await {
            Ok(seating) => seating,
            Err(e) => {
                e.log();
                return jobs.iter().map(|_| Err(e.duplicate())).collect();
            }
        };
        let seating = Seating {
            hall: hall.as_deref(),
            prices: &prices,
            seat_ids: &seat_ids,
        };
        let orders: Vec<Order> = jobs
            .iter()
            .map(|j| Order {
                req: &j.req,
                token: &j.token,
                keyed: j.keyed.as_ref(),
            })
            .collect();
        let result = batch::book(
            &inner.pool,
            self.show_id,
            &orders,
            inner.hold_ttl,
            inner.limits,
            seating,
        )
        .await;
        match result {
            Ok(outcomes) => outcomes,
            Err(Failure::CommitUnknown {
                cause,
                backend_pid,
                outcomes,
            }) => {
                tracing::warn!(error = %cause, size = jobs.len(), "the connection broke during a batch's COMMIT; finding out what happened");
                outcome::resolve(&inner.pool, backend_pid, outcomes).await
            }
            // Retrying cannot help while the database is away, nor for errors
            // that are not about any one booking.
            Err(Failure::Db(e)) if jobs.len() == 1 || !one_booking_may_cause(&e) => {
                let e = Error::from(e);
                e.log();
                jobs.iter().map(|_| Err(e.duplicate())).collect()
            }
            // A constraint or serialization failure: retry one by one, so that it
            // fails only the booking it belongs to.
            Err(Failure::Db(e)) => {
                tracing::warn!(error = %e, size = jobs.len(), "a booking batch failed; retrying its bookings one by one");
                let mut outcomes = Vec::with_capacity(jobs.len());
                for w in &orders {
                    let one = batch::book(
                        &inner.pool,
                        self.show_id,
                        std::slice::from_ref(w),
                        inner.hold_ttl,
                        inner.limits,
                        seating,
                    )
                    .await;
                    outcomes.push(match one {
                        Ok(mut one) => one.pop().unwrap_or_else(|| {
                            Err(Error::Unexpected(anyhow::anyhow!("empty batch")))
                        }),
                        Err(Failure::Db(e)) => Err(e.into()),
                        Err(Failure::CommitUnknown {
                            backend_pid,
                            outcomes,
                            ..
                        }) => outcome::resolve(&inner.pool, backend_pid, outcomes)
                            .await
                            .pop()
                            .unwrap_or_else(|| Err(Error::OutcomeUnknown)),
                    });
                }
                outcomes
            }
        }
    }
}

/// Errors that one booking of a batch may have caused: integrity constraints,
/// serialization failures and deadlocks.
fn one_booking_may_cause(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("23") || c == "40001" || c == "40P01"),
        _ => false,
    }
}
