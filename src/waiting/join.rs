//! The joiner: one task per instance that puts buyers in queues. Joins that arrive
//! together (the crowd at the pre-queue's opening, or every session asking for its
//! rank after the shuffle) share one transaction per show.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::place::{Place, place};
use crate::error::{Error, Result};
use crate::onsale::PlaceState;

/// Most joins taken into one round.
const ROUND: usize = 1024;

pub(super) struct Ask {
    pub show_id: i64,
    pub buyer: String,
    pub reply: oneshot::Sender<Result<Place>>,
}

pub(super) async fn run(pool: PgPool, mut asks: mpsc::Receiver<Ask>) {
    let mut round = Vec::with_capacity(ROUND);
    while asks.recv_many(&mut round, ROUND).await > 0 {
        let mut by_show: HashMap<i64, Vec<Ask>> = HashMap::new();
        for ask in round.drain(..) {
            by_show.entry(ask.show_id).or_default().push(ask);
        }
        for (show_id, asks) in by_show {
            let buyers: Vec<&str> = asks.iter().map(|a| a.buyer.as_str()).collect();
            match join(&pool, show_id, &buyers).await {
                Ok(places) => {
                    for ask in asks {
                        let answer = places.get(&ask.buyer).cloned().ok_or_else(|| {
                            Error::Unexpected(anyhow::anyhow!("a join has no place"))
                        });
                        let _ = ask.reply.send(answer);
                    }
                }
                Err(e) => {
                    for ask in asks {
                        let _ = ask.reply.send(Err(e.duplicate()));
                    }
                }
            }
        }
    }
}

/// Claims the admissions of these buyers that wait to be claimed: they now last
/// their whole `active_minutes` from the admission (the token minted next says so).
pub(super) async fn claim<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    show_id: i64,
    buyers: &[&str],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE queue_places p
         SET claimed = true, admitted_until = p.admitted_at + make_interval(mins => q.active_minutes)
         FROM show_queues q
         WHERE q.show_id = p.show_id AND p.show_id = $1 AND p.buyer = ANY($2)
           AND p.state = 'admitted' AND NOT p.claimed AND p.admitted_until > now()",
    )
    .bind(show_id)
    .bind(buyers)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Room {
    shuffled: bool,
    next_rank: i64,
    admitted_through: i64,
    admit_per_minute: i32,
    pre_queue_opens_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// Joins these buyers (in this order) to the show's queue, in one transaction.
/// The queue's row is locked first: joins and the doorman's shuffle take turns, so
/// a buyer joins either the pre-queue that is shuffled or the back of the queue.
async fn join(pool: &PgPool, show_id: i64, buyers: &[&str]) -> Result<HashMap<String, Place>> {
    let mut tx = pool.begin().await?;
    let room: Option<Room> = sqlx::query_as(
        "SELECT shuffled_at IS NOT NULL AS shuffled, next_rank, admitted_through,
                admit_per_minute, pre_queue_opens_at, now() AS now
         FROM show_queues WHERE show_id = $1 FOR UPDATE",
    )
    .bind(show_id)
    .fetch_optional(&mut *tx)
    .await?;
    let room = room.ok_or(Error::NoQueue)?;
    if let Some(opens_at) = room.pre_queue_opens_at.filter(|t| *t > room.now) {
        return Err(Error::QueueNotOpen { opens_at });
    }
    claim(&mut *tx, show_id, buyers).await?;
    #[derive(sqlx::FromRow)]
    struct Known {
        buyer: String,
        rank: Option<i64>,
        state: PlaceState,
        admitted_until: Option<DateTime<Utc>>,
    }
    let known: Vec<Known> = sqlx::query_as(
        "SELECT buyer, rank, state, admitted_until FROM queue_places
         WHERE show_id = $1 AND buyer = ANY($2)",
    )
    .bind(show_id)
    .bind(buyers)
    .fetch_all(&mut *tx)
    .await?;
    let mut places: HashMap<String, Place> = known
        .into_iter()
        .map(|k| {
            let place = place(
                show_id,
                k.state,
                k.rank,
                k.admitted_until,
                room.admitted_through,
                room.admit_per_minute,
            );
            (k.buyer, place)
        })
        .collect();
    // New buyers, each once, in the order they arrived: after the shuffle, each
    // takes the next rank at the back.
    let mut seen = std::collections::HashSet::new();
    let new: Vec<&str> = buyers
        .iter()
        .copied()
        .filter(|b| !places.contains_key(*b) && seen.insert(*b))
        .collect();
    if !new.is_empty() {
        sqlx::query(
            "INSERT INTO queue_places (show_id, buyer, rank)
             SELECT $1, b, CASE WHEN $3 THEN $4 + n - 1 END
             FROM unnest($2::text[]) WITH ORDINALITY AS t(b, n)",
        )
        .bind(show_id)
        .bind(&new)
        .bind(room.shuffled)
        .bind(room.next_rank)
        .execute(&mut *tx)
        .await?;
        if room.shuffled {
            sqlx::query("UPDATE show_queues SET next_rank = next_rank + $2 WHERE show_id = $1")
                .bind(show_id)
                .bind(new.len() as i64)
                .execute(&mut *tx)
                .await?;
        }
        metrics::counter!(crate::monitoring::QUEUE_JOINS).increment(new.len() as u64);
        for (n, buyer) in new.iter().enumerate() {
            let rank = room.shuffled.then_some(room.next_rank + n as i64);
            let place = place(
                show_id,
                PlaceState::Waiting,
                rank,
                None,
                room.admitted_through,
                room.admit_per_minute,
            );
            places.insert(buyer.to_string(), place);
        }
    }
    tx.commit().await?;
    Ok(places)
}
