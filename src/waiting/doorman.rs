//! The doorman: every instance ticks every waiting room a few times a second, and
//! for each show exactly one of them works at a time. A tick takes the show's
//! doorman lock (a transaction-level advisory lock; an instance that finds it taken
//! skips the show) and the queue's row, then, in that transaction:
//!
//! 1. at the sale's opening (by the database's clock), shuffles the pre-queue
//!    and gives out ranks 1..n;
//! 2. ends admissions past `active_minutes`;
//! 3. admits the next buyers in rank order, as many as the pacing allows and
//!    fewer than `max_active` are active;
//! 4. tells every instance where the queue stands (`NOTIFY show_changes`), when
//!    that changed or every few seconds.
//!
//! Since every admission is made under the queue row's lock, counted in the same
//! transaction, the number of active admissions never exceeds `max_active`,
//! however many instances tick.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::onsale::queue::{admissions, shuffle};

/// How often each waiting room is ticked.
pub const TICK: Duration = Duration::from_millis(250);
/// A queue's progress is told at least this often, changed or not.
const HEARTBEAT: Duration = Duration::from_secs(4);

/// Where a show's queue stands: what every instance hears after a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub show_id: i64,
    /// Every rank up to this one has been admitted.
    pub admitted_through: i64,
    /// Buyers waiting with a rank (after the shuffle), or in the pre-queue (before).
    pub waiting: i64,
    pub active: i64,
    pub admit_per_minute: i32,
    pub paused: bool,
    /// Whether the pre-queue has been shuffled (ranks given out).
    pub shuffled: bool,
}

pub async fn run(pool: PgPool, mut stopping: watch::Receiver<bool>) {
    let mut told: HashMap<i64, (Instant, Progress)> = HashMap::new();
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let shows: Vec<i64> = match sqlx::query_scalar(
            "SELECT q.show_id FROM show_queues q JOIN shows s ON s.id = q.show_id
             WHERE s.sales_close_at IS NULL OR s.sales_close_at > now()",
        )
        .fetch_all(&pool)
        .await
        {
            Ok(shows) => shows,
            Err(e) => {
                tracing::warn!(error = %e, "the doorman cannot read the waiting rooms");
                continue;
            }
        };
        told.retain(|show, _| shows.contains(show));
        for show_id in shows {
            let last = told.get(&show_id).cloned();
            match tick(&pool, show_id, last.as_ref()).await {
                Ok(Some(progress)) => {
                    told.insert(show_id, (Instant::now(), progress));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(show_id, error = %e, "a waiting room's tick failed"),
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct Room {
    admit_per_minute: i32,
    max_active: i32,
    active_minutes: i32,
    claim_secs: i32,
    paused: bool,
    shuffled_at: Option<DateTime<Utc>>,
    next_rank: i64,
    admitted_through: i64,
    credit: f64,
    credit_at: Option<DateTime<Utc>>,
    sales_open_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// One tick of one show's waiting room: the progress it told every instance, if
/// it told them. `None` when another instance is ticking it, or nothing was due.
async fn tick(
    pool: &PgPool,
    show_id: i64,
    last: Option<&(Instant, Progress)>,
) -> sqlx::Result<Option<Progress>> {
    let mut tx = pool.begin().await?;
    // One doorman per show: the others skip it. (Not `SKIP LOCKED` on the queue's
    // row: the joiner holds that row for each batch of joins, and a crowd joining
    // without pause would starve admissions.)
    let mine: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended('doorman', $1))")
            .bind(show_id)
            .fetch_one(&mut *tx)
            .await?;
    if !mine {
        return Ok(None);
    }
    // Then the row itself, waiting for a batch of joins to finish: joins and the
    // shuffle take turns, so a buyer joins either the pre-queue or the back.
    let room: Option<Room> = sqlx::query_as(
        "SELECT q.admit_per_minute, q.max_active, q.active_minutes, q.claim_secs, q.paused, q.shuffled_at,
                q.next_rank, q.admitted_through, q.credit, q.credit_at, s.sales_open_at, now() AS now
         FROM show_queues q JOIN shows s ON s.id = q.show_id
         WHERE q.show_id = $1 FOR UPDATE OF q",
    )
    .bind(show_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(mut room) = room else {
        return Ok(None);
    };
    if room.shuffled_at.is_none() && room.sales_open_at.is_none_or(|open| open <= room.now) {
        shuffle_pre_queue(&mut tx, show_id, &mut room).await?;
    }
    sqlx::query(
        "UPDATE queue_places SET state = 'expired'
         WHERE show_id = $1 AND state = 'admitted' AND admitted_until <= now()",
    )
    .bind(show_id)
    .execute(&mut *tx)
    .await?;
    let (active, waiting): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'admitted' AND admitted_until > now()),
                count(*) FILTER (WHERE state = 'waiting')
         FROM queue_places WHERE show_id = $1",
    )
    .bind(show_id)
    .fetch_one(&mut *tx)
    .await?;
    let mut admitted = 0;
    if room.shuffled_at.is_some() {
        let elapsed = room
            .credit_at
            .map_or(0.0, |at| (room.now - at).as_seconds_f64());
        let (admit, credit) = if room.paused {
            // A pause saves no credit for a burst after it.
            (0, room.credit)
        } else {
            let free = i64::from(room.max_active) - active;
            admissions(room.credit, elapsed, room.admit_per_minute, free, waiting)
        };
        if admit > 0 {
            admitted = admit_next(&mut tx, show_id, admit, &mut room).await?;
        }
        sqlx::query(
            "UPDATE show_queues SET credit = $2, credit_at = $3, admitted_through = $4
             WHERE show_id = $1",
        )
        .bind(show_id)
        .bind(credit)
        .bind(room.now)
        .bind(room.admitted_through)
        .execute(&mut *tx)
        .await?;
    }
    let progress = Progress {
        show_id,
        admitted_through: room.admitted_through,
        waiting: waiting - admitted,
        active: active + admitted,
        admit_per_minute: room.admit_per_minute,
        paused: room.paused,
        shuffled: room.shuffled_at.is_some(),
    };
    let due = last.is_none_or(|(at, told)| *told != progress || at.elapsed() >= HEARTBEAT);
    if due {
        news(&mut tx, &progress).await?;
    }
    tx.commit().await?;
    Ok(due.then_some(progress))
}

/// Gives the pre-queue its ranks, in a uniformly random order (a ChaCha generator
/// seeded from the operating system), after the ranks already given out.
async fn shuffle_pre_queue(
    conn: &mut PgConnection,
    show_id: i64,
    room: &mut Room,
) -> sqlx::Result<()> {
    let mut buyers: Vec<String> = sqlx::query_scalar(
        "SELECT buyer FROM queue_places WHERE show_id = $1 AND rank IS NULL ORDER BY joined_at, buyer",
    )
    .bind(show_id)
    .fetch_all(&mut *conn)
    .await?;
    shuffle(&mut buyers, &mut StdRng::from_os_rng());
    sqlx::query(
        "UPDATE queue_places p SET rank = $3 + t.n - 1
         FROM unnest($2::text[]) WITH ORDINALITY AS t(b, n)
         WHERE p.show_id = $1 AND p.buyer = t.b",
    )
    .bind(show_id)
    .bind(&buyers)
    .bind(room.next_rank)
    .execute(&mut *conn)
    .await?;
    room.next_rank += buyers.len() as i64;
    room.shuffled_at = Some(room.now);
    // Pacing starts now, with nothing saved up.
    room.credit = 0.0;
    room.credit_at = Some(room.now);
    sqlx::query(
        "UPDATE show_queues SET shuffled_at = $2, next_rank = $3, credit = 0, credit_at = $2
         WHERE show_id = $1",
    )
    .bind(show_id)
    .bind(room.now)
    .bind(room.next_rank)
    .execute(&mut *conn)
    .await?;
    tracing::info!(show_id, buyers = buyers.len(), "pre-queue shuffled");
    Ok(())
}

/// Admits the next `n` waiting buyers in rank order; moves the watermark. An
/// admission lasts `claim_secs` until its buyer claims it (see `join::claim`).
async fn admit_next(
    conn: &mut PgConnection,
    show_id: i64,
    n: i64,
    room: &mut Room,
) -> sqlx::Result<i64> {
    let admitted: Vec<(i64, f64)> = sqlx::query_as(
        "UPDATE queue_places p
         SET state = 'admitted', admitted_at = now(),
             admitted_until = now() + least(make_interval(mins => $3), make_interval(secs => $5))
         FROM (SELECT buyer FROM queue_places
               WHERE show_id = $1 AND state = 'waiting' AND rank IS NOT NULL
               ORDER BY rank LIMIT $2) AS next
         WHERE p.show_id = $1 AND p.buyer = next.buyer
         RETURNING p.rank, extract(epoch FROM now() - greatest(p.joined_at, $4))::float8",
    )
    .bind(show_id)
    .bind(n)
    .bind(room.active_minutes)
    .bind(room.shuffled_at)
    .bind(f64::from(room.claim_secs))
    .fetch_all(&mut *conn)
    .await?;
    let waited = metrics::histogram!(crate::monitoring::QUEUE_WAITED);
    for (rank, secs) in &admitted {
        room.admitted_through = room.admitted_through.max(*rank);
        waited.record(*secs);
    }
    metrics::counter!(crate::monitoring::QUEUE_ADMITTED).increment(admitted.len() as u64);
    Ok(admitted.len() as i64)
}

/// Tells every instance (at commit) where the queue stands.
async fn news(conn: &mut PgConnection, progress: &Progress) -> sqlx::Result<()> {
    let mut payload = serde_json::to_value(progress).unwrap_or_default();
    payload["kind"] = "queue".into();
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(payload.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells every instance that a show's waiting room settings changed.
pub async fn tell(pool: &PgPool, show_id: i64) -> sqlx::Result<()> {
    let payload = serde_json::json!({"kind": "queue_settings", "show_id": show_id});
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(payload.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets a waiting room's numbers (its settings changed, or it was removed).
pub fn forget(show_id: i64) {
    PICTURE.remove(&show_id);
}

/// Every instance's picture of every waiting room, from the news, for the gauges
/// (each instance reports the whole, whichever doorman ticked).
static PICTURE: std::sync::LazyLock<dashmap::DashMap<i64, Progress>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);

/// Updates the gauges from a waiting room's news.
pub fn heard(progress: &Progress) {
    PICTURE.insert(progress.show_id, progress.clone());
    let (mut waiting, mut active, mut rate) = (0, 0, 0);
    for p in PICTURE.iter() {
        waiting += p.waiting;
        active += p.active;
        if !p.paused {
            rate += i64::from(p.admit_per_minute);
        }
    }
    metrics::gauge!(crate::monitoring::QUEUE_WAITING).set(waiting as f64);
    metrics::gauge!(crate::monitoring::QUEUE_ACTIVE).set(active as f64);
    metrics::gauge!(crate::monitoring::QUEUE_RATE).set(rate as f64);
}
