//! Bookings: the transaction that sells seats, and the ones that confirm, cancel
//! and expire them. REST handlers and WebSocket sessions both call [`Bookings`].
//!
//! Lock order, everywhere: booking rows first (by id), then seat rows (by id).
//! Every transaction here takes its locks in that order, so none can deadlock with
//! another; the schema's constraints catch any code that breaks the rules.

mod batch;
mod decide;
mod executor;
mod gate;
pub mod idempotency;
mod model;
mod outcome;
mod pick;
mod read;
mod request;
mod seat_index;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::auth::Buyer;
use crate::config::BookingRules;
use crate::error::{Error, Result};

pub use crate::status::{BookingStatus, SeatStatus};
pub use idempotency::{IdempotencyKey, Keyed};
pub use model::{BookedSeat, BookingDetails, BuyerBooking, CreatedBooking, Credential, PricedSeat};
pub use request::{BestAvailableBody, BookRequest, BookRequestBody, SeatChoice};
pub use tx::StatusChange;
pub(crate) use tx::release;

/// The booking service: one per process, cheap to clone.
#[derive(Clone)]
pub struct Bookings {
    pool: PgPool,
    executor: executor::Executor,
    max_seats: usize,
    /// Wakes the expiry worker when a hold is made, since it may now be the earliest.
    new_hold: Arc<Notify>,
    /// Told of each show this service changed, as it answers, so that a client
    /// reads its own booking in the next page it asks for (the NOTIFY that tells
    /// every instance may arrive a moment later).
    stamps: crate::pages::Stamps,
}

impl Bookings {
    pub fn new(pool: PgPool, rules: &BookingRules, new_hold: Arc<Notify>) -> Bookings {
        Bookings {
            executor: executor::Executor::new(pool.clone(), rules),
            pool,
            max_seats: rules.max_seats_per_booking,
            new_hold,
            stamps: crate::pages::Stamps::default(),
        }
    }

    /// The same service, telling `stamps` of what it changes.
    pub fn telling(mut self, stamps: crate::pages::Stamps) -> Bookings {
        self.stamps = stamps;
        self
    }

    /// Checks a request as sent; errors are `VALIDATION_FAILED`. `buyer` is the
    /// signed-in buyer with `AUTH=jwt`; without one, the request is also known by
    /// the `client` address it came from.
    pub fn validate(
        &self,
        body: BookRequestBody,
        buyer: Option<&Buyer>,
        client: std::net::IpAddr,
    ) -> Result<BookRequest> {
        let mut req = BookRequest::parse(body, self.max_seats, buyer.map(|b| b.id.as_str()))?;
        req.client = buyer.is_none().then_some(client);
        Ok(req)
    }

    /// Books all the requested seats or none of them. Concurrent bookings of a show
    /// share transactions (see `executor`); each still succeeds or fails on its own.
    /// With an idempotency key, a retry of the same request gets the first answer.
    #[tracing::instrument(skip_all, fields(show_id = show_id, booking_id = tracing::field::Empty))]
    pub async fn book(
        &self,
        show_id: i64,
        req: BookRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<CreatedBooking> {
        let started = std::time::Instant::now();
        let result = self.book_once(show_id, req, key).await;
        // Even a failed booking may have written (an unknown outcome).
        self.stamps.changed(show_id);
        metrics::histogram!(crate::monitoring::BOOKING_SECONDS).record(started.elapsed());
        let outcome = outcome_label(&result);
        metrics::counter!(crate::monitoring::BOOKINGS, "outcome" => outcome).increment(1);
        result
    }

    async fn book_once(
        &self,
        show_id: i64,
        req: BookRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<CreatedBooking> {
        let keyed = key.map(|key| Keyed::booking(key, show_id, &req));
        self.once_per_key(keyed.as_ref(), async {
            let token = new_token()?;
            let booking = self
                .executor
                .book(show_id, req, token, keyed.clone())
                .await?;
            tracing::Span::current().record("booking_id", booking.id);
            if booking.expires_at.is_some() {
                self.new_hold.notify_one();
            }
            Ok(booking)
        })
        .await
    }

    /// Runs `work` once per idempotency key: a retry gets the first answer back,
    /// and so does a duplicate that lost to its twin sent at the same time (it
    /// failed on the seats or on the key, and the twin's answer is the answer).
    async fn once_per_key<T: serde::de::DeserializeOwned>(
        &self,
        keyed: Option<&Keyed>,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        if let Some(keyed) = keyed
            && let Some(first) = idempotency::recall(&self.pool, keyed).await?
        {
            return Ok(first);
        }
        match (work.await, keyed) {
            (Ok(done), _) => Ok(done),
            (Err(e), Some(keyed)) => match idempotency::recall(&self.pool, keyed).await {
                Ok(Some(first)) => Ok(first),
                Err(reused @ Error::IdempotencyKeyReused) => Err(reused),
                _ => Err(e),
            },
            (Err(e), None) => Err(e),
        }
    }

    /// Confirms a live hold (it becomes a sale), or cancels a hold or a sale (its
    /// seats are freed). A retry with the same key gets the first answer.
    #[tracing::instrument(skip(self, credential, key))]
    pub async fn change_status(
        &self,
        change: StatusChange,
        booking_id: i64,
        credential: Credential,
        key: Option<IdempotencyKey>,
    ) -> Result<BookingDetails> {
        let keyed = key.map(|key| Keyed::action(key, change.name(), booking_id));
        let pool = self.pool.clone();
        let remember = keyed.clone();
        self.once_per_key(keyed.as_ref(), async move {
            let booking = detached(async move {
                tx::change_status(&pool, change, booking_id, &credential, remember.as_ref()).await
            })
            .await?;
            self.stamps.changed(booking.show_id);
            Ok(booking)
        })
        .await
    }

    /// `ShowNotFound` unless the show exists; answered from memory for shows seen
    /// before (shows are never deleted), so a crowd opening sessions costs no queries.
    pub async fn ensure_show(&self, show_id: i64) -> Result<()> {
        self.executor.ensure_show(show_id).await
    }

    /// Shows with a live booking queue on this instance (for tests and metrics).
    pub fn active_queues(&self) -> usize {
        self.executor.active_shows()
    }

    /// Stops taking bookings and waits (up to `limit`) for the queued ones to end.
    pub async fn shutdown(&self, limit: Duration) -> bool {
        self.executor.shutdown(limit).await
    }

    /// Whether `token` is booking `id`'s token (false for an unknown booking).
    pub async fn token_matches(&self, id: i64, token: &str) -> Result<bool> {
        Ok(tx::token_matches(&self.pool, id, token)
            .await?
            .unwrap_or(false))
    }

    /// A buyer's bookings, newest first (the latest 200).
    pub async fn of_buyer(&self, user_id: &str) -> Result<Vec<BuyerBooking>> {
        read::of_buyer(&self.pool, user_id).await
    }

    /// A booking and its seats. A hold past its deadline reads as `EXPIRED` even
    /// before the expiry worker has written that down.
    pub async fn get(&self, booking_id: i64) -> Result<BookingDetails> {
        let mut conn = self.pool.acquire().await?;
        read::details(&mut conn, booking_id).await
    }
}

/// Runs a transaction in a task of its own, so that it commits or rolls back even
/// if the caller stops waiting (an HTTP client that hung up, a closing session).
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| Error::Unexpected(anyhow::anyhow!("a booking task failed: {e}")))?
}

/// 256 random bits, hex-encoded. Only its SHA-256 is stored.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `outcome` label of the bookings counter.
fn outcome_label(result: &Result<CreatedBooking>) -> &'static str {
    match result {
        Ok(b) if b.expires_at.is_some() => "held",
        Ok(_) => "booked",
        Err(
            Error::SeatsUnavailable { .. }
            | Error::NoAdjacentSeats { .. }
            | Error::NotEnoughSeats { .. }
            | Error::IdempotencyKeyReused,
        ) => "conflict",
        Err(Error::SeatsNotFound { .. } | Error::ShowNotFound(_)) => "not_found",
        Err(Error::UserLimitReached { .. }) => "limit",
        Err(_) => "error",
    }
}
