//! Bookings: the transaction that sells seats, and the ones that confirm, cancel
//! and expire them. REST handlers and WebSocket sessions both call [`Bookings`].
//!
//! Lock order, everywhere: booking rows first (by id), then seat rows (by id).
//! Every transaction here takes its locks in that order, so none can deadlock with
//! another; the schema's constraints catch any code that breaks the rules.

mod batch;
mod decide;
mod executor;
pub mod idempotency;
mod outcome;
mod pick;
mod request;
mod seat_index;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::auth::Buyer;
use crate::error::{Error, Result};
use crate::hall::Price;

pub use crate::status::{BookingStatus, SeatStatus};
pub use decide::BuyerLimits;
pub use idempotency::{IdempotencyKey, Keyed};
pub use request::{BestAvailableBody, BookRequest, BookRequestBody, SeatChoice, Text};
pub(crate) use tx::release;

/// The reply to a successful booking; the only place the token is ever shown (and
/// the answer an `Idempotency-Key` retry gets back).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedBooking {
    pub id: i64,
    pub show_id: i64,
    pub user_id: String,
    pub status: BookingStatus,
    pub seat_nos: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub token: String,
    /// The seats with their places and prices (answers remembered for an
    /// idempotency key before prices existed have none).
    #[serde(default)]
    pub seats: Vec<PricedSeat>,
    #[serde(default)]
    #[schema(value_type = String, example = "91.00")]
    pub total: Price,
    #[serde(default)]
    pub currency: String,
}

/// A booked seat: where it is and what it costs.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct PricedSeat {
    pub seat_no: String,
    pub section: String,
    #[sqlx(rename = "row_label")]
    pub row: String,
    pub number: String,
    pub category: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String, example = "45.50")]
    pub price: Price,
}

/// A booking as `GET /bookings/:id` shows it (no token).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BookingDetails {
    pub id: i64,
    pub show_id: i64,
    pub show_name: String,
    /// Who booked it; left out where the caller may not know (see `GET /bookings/:id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub seats: Vec<BookedSeat>,
    /// The seats' prices added up, in `currency`.
    #[sqlx(skip)]
    #[serde(default)]
    #[schema(value_type = String, example = "91.00")]
    pub total: Price,
    #[serde(default)]
    pub currency: String,
}

/// One of a buyer's bookings, as `GET /me/bookings` lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BuyerBooking {
    pub id: i64,
    pub show_id: i64,
    pub show_name: String,
    pub status: BookingStatus,
    pub seat_nos: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BookedSeat {
    pub status: SeatStatus,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub seat: PricedSeat,
}

/// What entitles a caller to confirm or cancel a booking.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The booking's token: whoever holds it.
    Token(String),
    /// The signed-in buyer (`AUTH=jwt`), for their own bookings.
    Owner(String),
}

/// The rules bookings are held to, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How long a hold lasts.
    pub hold_ttl: Duration,
    /// Most seats in one booking.
    pub max_seats_per_booking: usize,
    /// Per-buyer limits within a show.
    pub buyer_limits: BuyerLimits,
    /// How long a show's booking queue and workers outlive its last booking.
    pub queue_idle: Duration,
}

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
    pub fn new(pool: PgPool, rules: Rules, new_hold: Arc<Notify>) -> Bookings {
        Bookings {
            executor: executor::Executor::new(pool.clone(), &rules),
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
        let outcome = crate::monitoring::booking_outcome(&result);
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
        if let Some(keyed) = &keyed
            && let Some(first) = idempotency::recall(&self.pool, keyed).await?
        {
            return Ok(first);
        }
        let token = new_token()?;
        let booked = self.executor.book(show_id, req, token, keyed.clone()).await;
        let booking = match (booked, &keyed) {
            (Ok(booking), _) => booking,
            // The same request may have won meanwhile (a duplicate sent before
            // either committed): then this one lost on the seats or on the key,
            // and the winner's answer is the answer.
            (Err(e), Some(keyed)) => match idempotency::recall(&self.pool, keyed).await {
                Ok(Some(first)) => return Ok(first),
                Err(reused @ Error::IdempotencyKeyReused) => return Err(reused),
                _ => return Err(e),
            },
            (Err(e), None) => return Err(e),
        };
        tracing::Span::current().record("booking_id", booking.id);
        if booking.expires_at.is_some() {
            self.new_hold.notify_one();
        }
        Ok(booking)
    }

    /// Turns a live hold into a sale.
    #[tracing::instrument(skip(self, credential, key))]
    pub async fn confirm(
        &self,
        booking_id: i64,
        credential: Credential,
        key: Option<IdempotencyKey>,
    ) -> Result<BookingDetails> {
        self.act(tx::Action::Confirm, booking_id, credential, key)
            .await
    }

    /// Cancels a hold or a sale and frees its seats.
    #[tracing::instrument(skip(self, credential, key))]
    pub async fn cancel(
        &self,
        booking_id: i64,
        credential: Credential,
        key: Option<IdempotencyKey>,
    ) -> Result<BookingDetails> {
        self.act(tx::Action::Cancel, booking_id, credential, key)
            .await
    }

    /// A confirm or cancel, answered from memory for a retry with the same key.
    async fn act(
        &self,
        action: tx::Action,
        booking_id: i64,
        credential: Credential,
        key: Option<IdempotencyKey>,
    ) -> Result<BookingDetails> {
        let keyed = key.map(|key| Keyed::action(key, action.name(), booking_id));
        if let Some(keyed) = &keyed
            && let Some(first) = idempotency::recall(&self.pool, keyed).await?
        {
            return Ok(first);
        }
        let pool = self.pool.clone();
        let remember = keyed.clone();
        let done = detached(async move {
            tx::act(&pool, action, booking_id, &credential, remember.as_ref()).await
        })
        .await;
        match (done, &keyed) {
            (Ok(booking), _) => {
                self.stamps.changed(booking.show_id);
                Ok(booking)
            }
            // A duplicate sent at the same time may have done it first.
            (Err(e), Some(keyed)) => match idempotency::recall(&self.pool, keyed).await {
                Ok(Some(first)) => Ok(first),
                Err(reused @ Error::IdempotencyKeyReused) => Err(reused),
                _ => Err(e),
            },
            (Err(e), None) => Err(e),
        }
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
        Ok(sqlx::query_as(
            "SELECT b.id, b.show_id, s.name AS show_name,
                    CASE WHEN b.status = 'PENDING' AND b.expires_at <= now() THEN 'EXPIRED' ELSE b.status END AS status,
                    array(SELECT st.seat_no FROM booking_seats bs JOIN seats st ON st.id = bs.seat_id
                          WHERE bs.booking_id = b.id ORDER BY st.position) AS seat_nos,
                    b.created_at, b.expires_at
             FROM bookings b JOIN shows s ON s.id = b.show_id
             WHERE b.user_id = $1
             ORDER BY b.id DESC LIMIT 200",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A booking and its seats. A hold past its deadline reads as `EXPIRED` even
    /// before the expiry worker has written that down.
    pub async fn get(&self, booking_id: i64) -> Result<BookingDetails> {
        let mut conn = self.pool.acquire().await?;
        details(&mut conn, booking_id).await
    }
}

/// A booking and its seats, as `conn` sees them (inside a transaction: as it left them).
pub(crate) async fn details(
    conn: &mut sqlx::PgConnection,
    booking_id: i64,
) -> Result<BookingDetails> {
    let mut booking: BookingDetails = sqlx::query_as(
        "SELECT b.id, b.show_id, s.name AS show_name, b.user_id,
                CASE WHEN b.status = 'PENDING' AND b.expires_at <= now() THEN 'EXPIRED' ELSE b.status END AS status,
                b.created_at, b.expires_at,
                coalesce((SELECT c.currency FROM categories c WHERE c.show_id = b.show_id LIMIT 1), '') AS currency
         FROM bookings b JOIN shows s ON s.id = b.show_id
         WHERE b.id = $1",
    )
    .bind(booking_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::BookingNotFound(booking_id))?;
    booking.seats = sqlx::query_as(
        "SELECT s.seat_no, s.status, s.section, s.row_label, s.number, s.category, c.price::text AS price
         FROM booking_seats bs JOIN seats s ON s.id = bs.seat_id
              JOIN categories c ON c.show_id = s.show_id AND c.key = s.category
         WHERE bs.booking_id = $1 ORDER BY s.position",
    )
    .bind(booking_id)
    .fetch_all(&mut *conn)
    .await?;
    booking.total = Price::sum(booking.seats.iter().map(|s| &s.seat.price));
    Ok(booking)
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
