//! The booking transaction, for one booking or for a batch of them.
//!
//! A batch is locked, decided and written set-wise: one statement locks every seat
//! the batch asks for, [`decide`] picks the winners under those locks (first come,
//! first served, in queue order), and one statement writes all winning bookings,
//! their claims and their seats. A batch of one is the plain booking transaction; a
//! batch of fifty costs the database barely more than that, and commits (and
//! announces its changes with NOTIFY) once.
//!
//! The transaction uses exactly one pool connection from `begin` to `commit`: a
//! second one, asked for while holding the first, could deadlock the pool.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::decide::{Claim, Decision, Held, LockedSeat, Usage, decide};
use super::gate::Gate;
use super::idempotency::{self, Keyed};
use super::model::CreatedBooking;
use super::pick;
use super::request::{BookRequest, SeatChoice};
use super::seat_index::SeatIndex;
use crate::config::BuyerLimits;
use crate::error::{Error, Result};
use crate::hall::{Hall, Price, PriceList};
use crate::status::BookingStatus;

/// One booking of a batch: the request and the token it will get.
pub(super) struct Order<'a> {
    pub req: &'a BookRequest,
    pub token: &'a str,
    /// Its idempotency key, whose answer is remembered with the booking.
    pub keyed: Option<&'a Keyed>,
}

/// What never changes about the batch's show, read once per booking queue.
#[derive(Clone, Copy)]
pub(super) struct Seating<'a> {
    /// Its layout, when the batch asks for best-available seats.
    pub hall: Option<&'a Hall>,
    pub prices: &'a PriceList,
    pub seat_ids: &'a SeatIndex,
}

/// How a batch failed as a whole.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing was committed.
    Db(sqlx::Error),
    /// The connection broke during `COMMIT`: the batch may or may not have been
    /// written. `outcomes` are the answers had it been; `backend_pid` is the server
    /// process that ran it, which must be gone before anyone looks.
    CommitUnknown {
        cause: sqlx::Error,
        backend_pid: i32,
        outcomes: Vec<Result<CreatedBooking>>,
    },
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

/// A booking row as written (rows come in the winners' order).
#[derive(sqlx::FromRow)]
struct Written {
    id: i64,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    backend_pid: i32,
}

/// Runs the batch in one transaction. The outer error is for the transaction as a
/// whole; the inner ones are per booking (seats taken, unknown seats).
pub(super) async fn book(
    pool: &PgPool,
    show_id: i64,
    batch: &[Order<'_>],
    hold_ttl: Duration,
    limits: BuyerLimits,
    show: Seating<'_>,
) -> Result<Vec<Result<CreatedBooking>>, Failure> {
    let Seating {
        hall,
        prices,
        seat_ids,
    } = show;
    let mut tx = pool.begin().await?;
    // The sale window and the waiting room, by this transaction's now().
    let carried = || batch.iter().map(|o| o.req.admission.as_deref());
    let admissions: Vec<&str> = carried().flatten().collect();
    let gate = match Gate::read(&mut tx, show_id, &admissions).await {
        Ok(gate) => gate,
        Err(e) => return Ok(batch.iter().map(|_| Err(e.duplicate())).collect()),
    };
    let passes = gate.check(carried());
    if passes.iter().all(Result::is_err) {
        // Nothing was asked of the database but the gate: nothing to undo.
        return Ok(passes
            .into_iter()
            .filter_map(Result::err)
            .map(Err)
            .collect());
    }
    let named: Vec<&str> = batch
        .iter()
        .zip(&passes)
        .filter(|(_, pass)| pass.is_ok())
        .filter_map(|(w, _)| match &w.req.seats {
            SeatChoice::Listed(seat_nos) => Some(seat_nos.iter().map(String::as_str)),
            SeatChoice::Best(_) => None,
        })
        .flatten()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (usage, addresses) = if limits.any() {
        lock_buyers(&mut tx, show_id, batch, limits).await?
    } else {
        (HashMap::new(), HashMap::new())
    };
    let asks: Vec<Option<&crate::hall::Ask>> = batch
        .iter()
        .zip(&passes)
        .map(|(w, pass)| match &w.req.seats {
            SeatChoice::Best(ask) if pass.is_ok() => Some(ask),
            _ => None,
        })
        .collect();
    let picks = match hall {
        Some(hall) if asks.iter().any(Option::is_some) => {
            pick::choose(&mut tx, show_id, hall, &asks, &named).await?
        }
        _ => asks.iter().map(|_| None).collect(),
    };
    let picked_ids: Vec<i64> = picks
        .iter()
        .flatten()
        .filter_map(|p| p.as_ref().ok())
        .flatten()
        .copied()
        .collect();
    let mut ids = seat_ids.ids(named.iter().copied());
    ids.extend(&picked_ids);
    ids.sort_unstable();
    ids.dedup();
    let (stale, locked) = lock(&mut tx, &ids).await?;
    let by_id: HashMap<i64, &str> = locked.iter().map(|s| (s.id, s.seat_no.as_str())).collect();
    // Each booking's seat numbers, or why it has none (best-available found none).
    let lists: Vec<Result<Vec<String>>> = batch
        .iter()
        .zip(picks)
        .zip(passes)
        .map(|((w, picked), pass)| {
            pass?;
            match (&w.req.seats, picked) {
                (SeatChoice::Listed(seat_nos), _) => Ok(seat_nos.clone()),
                (SeatChoice::Best(_), Some(Ok(ids))) => Ok(ids
                    .iter()
                    .filter_map(|id| by_id.get(id).map(|n| n.to_string()))
                    .collect()),
                (SeatChoice::Best(_), Some(Err(e))) => Err(e),
                (SeatChoice::Best(_), None) => Err(Error::Unexpected(anyhow::anyhow!(
                    "a best-available booking reached a batch without its hall"
                ))),
            }
        })
        .collect();
    let claims: Vec<Claim> = batch
        .iter()
        .zip(&lists)
        .filter_map(|(w, list)| {
            Some(Claim {
                seat_nos: list.as_ref().ok()?,
                user_id: &w.req.user_id,
                hold: !w.req.immediate_confirm,
                address: w.req.client,
            })
        })
        .collect();
    let all_seats: std::collections::HashSet<&str> = claims
        .iter()
        .flat_map(|w| w.seat_nos.iter().map(String::as_str))
        .collect();
    let requested: Vec<LockedSeat> = locked
        .into_iter()
        .filter(|s| all_seats.contains(s.seat_no.as_str()))
        .collect();
    let held = Held {
        buyers: usage.iter().map(|(u, n)| (u.as_str(), *n)).collect(),
        addresses,
    };
    let mut decided = decide(&claims, &requested, &stale, limits, held).into_iter();
    let decisions: Vec<Decision> = lists
        .iter()
        .map(|list| match list {
            Ok(_) => decided.next().unwrap_or_else(|| {
                Err(Error::Unexpected(anyhow::anyhow!(
                    "a booking was not decided"
                )))
            }),
            Err(e) => Err(e.duplicate()),
        })
        .collect();
    if decisions.iter().all(Result::is_err) {
        // Nothing to write: the transaction rolls back and changes nothing.
        return Ok(answers(show_id, batch, decisions, Vec::new(), prices));
    }
    if !stale.is_empty() {
        super::tx::release(&mut tx, &stale, BookingStatus::Expired).await?;
    }
    // Addresses are written only where their holds are counted.
    let record_address = limits.max_holds_per_address.is_some();
    let written = write(
        &mut tx,
        show_id,
        batch,
        &decisions,
        hold_ttl,
        Recorded {
            address: record_address,
            admission: gate.queued(),
        },
    )
    .await?;
    let backend_pid = written.first().map_or(0, |w| w.backend_pid);
    let outcomes = answers(show_id, batch, decisions, written, prices);
    let keyed: Vec<(&Keyed, &CreatedBooking)> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(w, outcome)| Some((w.keyed?, outcome.as_ref().ok()?)))
        .collect();
    if !keyed.is_empty() {
        idempotency::remember(&mut tx, 201, &keyed).await?;
    }
    match tx.commit().await {
        Ok(()) => Ok(outcomes),
        // PostgreSQL answered: the transaction was rolled back (a deferred
        // constraint, say), so the outcome is known.
        Err(e @ sqlx::Error::Database(_)) => Err(Failure::Db(e)),
        Err(cause) => Err(Failure::CommitUnknown {
            cause,
            backend_pid,
            outcomes,
        }),
    }
}

/// Locks the batch's buyers in this show (a transaction-level advisory lock per
/// buyer, taken in key order before any booking or seat: the lock order is buyers,
/// bookings, seats), then reads what each already holds. Under these locks no other
/// batch, on any instance, can add to these buyers' bookings until this one ends,
/// so the counts stay true while the batch decides. Advisory locks write nothing;
/// two buyers whose keys collide merely take turns. Holds past their deadline do not
/// count.
async fn lock_buyers(
    conn: &mut PgConnection,
    show_id: i64,
    batch: &[Order<'_>],
    limits: BuyerLimits,
) -> sqlx::Result<(HashMap<String, Usage>, HashMap<IpAddr, i64>)> {
    let mut buyers: Vec<&str> = batch.iter().map(|w| w.req.user_id.as_str()).collect();
    buyers.sort_unstable();
    buyers.dedup();
    let mut addresses: Vec<String> = match limits.max_holds_per_address {
        Some(_) => batch
            .iter()
            .filter_map(|w| w.req.client.map(|ip| ip.to_string()))
            .collect(),
        None => Vec::new(),
    };
    addresses.sort_unstable();
    addresses.dedup();
    // An address is locked like a buyer, under a key no buyer's name is likely to
    // share (one that does merely takes turns with it).
    let keys: Vec<String> = buyers
        .iter()
        .map(|b| b.to_string())
        .chain(addresses.iter().map(|a| format!("address {a}")))
        .collect();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k)
         FROM (SELECT DISTINCT hashtextextended(u, $1) AS k FROM unnest($2::text[]) AS u ORDER BY k) AS keys",
    )
    .bind(show_id)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    let by_address = if addresses.is_empty() {
        HashMap::new()
    } else {
        holds_by_address(conn, show_id, &addresses).await?
    };
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT b.user_id, count(bs.seat_id), count(DISTINCT b.id) FILTER (WHERE b.status = 'PENDING')
         FROM bookings b JOIN booking_seats bs ON bs.booking_id = b.id AND bs.live
         WHERE b.show_id = $1 AND b.user_id = ANY($2) AND b.is_live
           AND NOT (b.status = 'PENDING' AND b.expires_at <= now())
         GROUP BY b.user_id",
    )
    // Planned afresh each time, not once per connection: a plan cached when the
    // bookings table was small (the first minutes of a first sale) scans the whole
    // table, and keeps doing so as it grows. Re-planning is cheap and follows the
    // table's actual size (docs/BENCHMARKS.md, "What features cost").
    .persistent(false)
    .bind(show_id)
    .bind(&buyers)
    .fetch_all(&mut *conn)
    .await?;
    let by_buyer = rows
        .into_iter()
        .map(|(user, seats, holds)| (user, Usage { seats, holds }))
        .collect();
    Ok((by_buyer, by_address))
}

/// The live holds of these addresses in the show (read under their locks).
async fn holds_by_address(
    conn: &mut PgConnection,
    show_id: i64,
    addresses: &[String],
) -> sqlx::Result<HashMap<IpAddr, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT host(client_addr), count(*) FROM bookings
         WHERE show_id = $1 AND client_addr = ANY($2::text[]::inet[])
           AND status = 'PENDING' AND expires_at > now()
         GROUP BY client_addr",
    )
    .persistent(false)
    .bind(show_id)
    .bind(addresses)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(address, holds)| Some((address.parse().ok()?, holds)))
        .collect())
}

/// Locks the holds past their deadline among the requested seats (booking rows
/// first, keeping the bookings-then-seats order), then, in one pass in id order,
/// the requested seats and the stale holds' seats. Seats are found by id only
/// (see [`SeatIndex`] for why).
async fn lock(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<(Vec<i64>, Vec<LockedSeat>)> {
    let stale: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM bookings
         WHERE id IN (SELECT booking_id FROM seats WHERE id = ANY($1) AND status = 'RESERVED')
           AND status = 'PENDING' AND expires_at <= now()
         ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let locked: Vec<LockedSeat> = sqlx::query_as(
        "SELECT id, CASE WHEN blocked THEN 'BLOCKED' ELSE status END AS status, booking_id,
                seat_no, section, row_label, number, category
         FROM seats
         WHERE id = ANY($1) OR booking_id = ANY($2)
         ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .bind(&stale)
    .fetch_all(&mut *conn)
    .await?;
    Ok((stale, locked))
}

/// What a booking row records besides the booking: its client's address (where
/// holds are counted per address) and its admission (where the show has a
/// waiting room, so that confirming or releasing its holds ends the admission).
struct Recorded {
    address: bool,
    admission: bool,
}

/// One statement writes every winning booking, its claims and its seats. Rows of
/// `b` are matched back to their requests through the token hash, which is unique.
async fn write(
    conn: &mut PgConnection,
    show_id: i64,
    batch: &[Order<'_>],
    decisions: &[Decision<'_>],
    hold_ttl: Duration,
    recorded: Recorded,
) -> sqlx::Result<Vec<Written>> {
    // Columns of the winning bookings (n = position among the winners), and of their seats.
    let mut user_ids = Vec::new();
    let mut statuses = Vec::new();
    let mut tokens = Vec::new();
    let mut addresses: Vec<Option<String>> = Vec::new();
    let mut admissions: Vec<Option<&str>> = Vec::new();
    let (mut seat_owner, mut seat_ids) = (Vec::new(), Vec::new());
    let winners = batch
        .iter()
        .zip(decisions)
        .filter_map(|(w, d)| Some((w, d.as_ref().ok()?)));
    for (n, (w, seats)) in winners.enumerate() {
        user_ids.push(w.req.user_id.as_str());
        statuses.push(status_of(w.req).as_str());
        tokens.push(w.token);
        addresses.push(
            w.req
                .client
                .filter(|_| recorded.address)
                .map(|ip| ip.to_string()),
        );
        admissions.push(w.req.admission.as_deref().filter(|_| recorded.admission));
        for seat in seats {
            seat_owner.push(n as i64 + 1);
            seat_ids.push(seat.id);
        }
    }
    let written: Vec<Written> = sqlx::query_as(
        "WITH r AS (
             SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $8::text[], $9::text[])
                 WITH ORDINALITY AS r(user_id, status, token, client_addr, queue_buyer, n)
         ), b AS (
             INSERT INTO bookings (show_id, user_id, status, token_hash, expires_at, client_addr, queue_buyer)
             SELECT $1, r.user_id, r.status, sha256(convert_to(r.token, 'UTF8')),
                    CASE WHEN r.status = 'PENDING' THEN now() + make_interval(secs => $5) END,
                    r.client_addr::inet, r.queue_buyer
             FROM r ORDER BY r.n
             RETURNING id, token_hash, created_at, expires_at, status
         ), bn AS (
             SELECT r.n, b.id, b.created_at, b.expires_at, b.status
             FROM b JOIN r ON b.token_hash = sha256(convert_to(r.token, 'UTF8'))
         ), s AS (
             SELECT * FROM unnest($6::int8[], $7::int8[]) AS s(n, seat_id)
         ), claims AS (
             INSERT INTO booking_seats (booking_id, seat_id, live)
             SELECT bn.id, s.seat_id, true FROM s JOIN bn USING (n)
         ), seats_taken AS (
             UPDATE seats
             SET status = CASE bn.status WHEN 'PENDING' THEN 'RESERVED' ELSE 'BOOKED' END,
                 booking_id = bn.id, version = seats.version + 1
             FROM s JOIN bn USING (n) WHERE seats.id = s.seat_id
         )
         SELECT id, created_at, expires_at, pg_backend_pid() AS backend_pid FROM bn ORDER BY n",
    )
    .bind(show_id)
    .bind(&user_ids)
    .bind(&statuses)
    .bind(&tokens)
    .bind(hold_ttl.as_secs_f64())
    .bind(&seat_owner)
    .bind(&seat_ids)
    .bind(&addresses)
    .bind(&admissions)
    .fetch_all(&mut *conn)
    .await?;
    if written.len() != user_ids.len() {
        // Dropping the transaction rolls it back: nothing half-written is kept.
        return Err(sqlx::Error::Protocol(format!(
            "wrote {} of {} bookings in a batch",
            written.len(),
            user_ids.len()
        )));
    }
    Ok(written)
}

/// Each booking's answer, from the decisions and the rows written for the winners.
fn answers(
    show_id: i64,
    batch: &[Order<'_>],
    decisions: Vec<Decision<'_>>,
    written: Vec<Written>,
    prices: &PriceList,
) -> Vec<Result<CreatedBooking>> {
    let mut rows = written.into_iter();
    batch
        .iter()
        .zip(decisions)
        .map(|(w, decision)| {
            let seats = decision?;
            let row = rows.next().ok_or_else(|| {
                crate::Error::Unexpected(anyhow::anyhow!("a winning booking has no row"))
            })?;
            let priced: Vec<_> = seats.iter().map(|s| s.priced(prices)).collect();
            Ok(CreatedBooking {
                id: row.id,
                show_id,
                user_id: w.req.user_id.clone(),
                status: status_of(w.req),
                seat_nos: seats.iter().map(|s| s.seat_no.clone()).collect(),
                created_at: row.created_at,
                expires_at: row.expires_at,
                token: w.token.to_string(),
                total: Price::sum(priced.iter().map(|s| &s.price)),
                currency: prices.currency.clone(),
                seats: priced,
            })
        })
        .collect()
}

fn status_of(req: &BookRequest) -> BookingStatus {
    if req.immediate_confirm {
        BookingStatus::Confirmed
    } else {
        BookingStatus::Pending
    }
}
