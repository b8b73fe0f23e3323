//! The joiner: one task per instance that puts buyers in queues. Joins that arrive
//! together (the crowd at the pre-queue's opening, or every session asking for its
//! rank after the shuffle) share one transaction per show.

use std::collections::HashMap;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::place::{Place, place};
use crate::error::{Error, Result};
use crate::onsale::PlaceState;

/// Most joins taken into one round.
const ROUND: usize = 1024;

pub(super) struct Ask {
    pub show_id: i64,
    pub buyer: String,
    /// The client address a new place is counted against (`AUTH=none`).
    pub address: Option<IpAddr>,
    pub reply: oneshot::Sender<Result<Place>>,
}

pub(super) async fn run(pool: PgPool, mut asks: mpsc::Receiver<Ask>, per_address: Option<u32>) {
    let mut round = Vec::with_capacity(ROUND);
    while asks.recv_many(&mut round, ROUND).await > 0 {
        let mut by_show: HashMap<i64, Vec<Ask>> = HashMap::new();
        for ask in round.drain(..) {
            by_show.entry(ask.show_id).or_default().push(ask);
        }
        for (show_id, asks) in by_show {
            let buyers: Vec<(&str, Option<IpAddr>)> =
                asks.iter().map(|a| (a.buyer.as_str(), a.address)).collect();
            match join(&pool, show_id, &buyers, per_address).await {
                Ok(Joined { places, refused }) => {
                    for ask in asks {
                        let answer = match (places.get(&ask.buyer), refused.get(&ask.buyer)) {
                            (Some(place), _) => Ok(place.clone()),
                            (None, Some(&has)) => Err(Error::UserLimitReached {
                                limit: "MAX_PLACES_PER_ADDRESS",
                                max: per_address.unwrap_or_default(),
                                has,
                            }),
                            (None, None) => {
                                Err(Error::Unexpected(anyhow::anyhow!("a join has no place")))
                            }
                        };
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

/// What a round of joins came to: the places, and the new buyers refused because
/// their address has as many places as it may (with how many it has).
struct Joined {
    places: HashMap<String, Place>,
    refused: HashMap<String, i64>,
}

/// Joins these buyers (in this order) to the show's queue, in one transaction.
/// The queue's row is locked first: joins and the doorman's shuffle take turns, so
/// a buyer joins either the pre-queue that is shuffled or the back of the queue.
async fn join(
    pool: &PgPool,
    show_id: i64,
    asks: &[(&str, Option<IpAddr>)],
    per_address: Option<u32>,
) -> Result<Joined> {
    let buyers: Vec<&str> = asks.iter().map(|(b, _)| *b).collect();
    let buyers = buyers.as_slice();
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
    let arriving: Vec<(&str, Option<IpAddr>)> = asks
        .iter()
        .copied()
        .filter(|(b, _)| !places.contains_key(*b) && seen.insert(*b))
        .collect();
    // Counted under the queue's row lock: every join of the show takes it, so the
    // count is exact across instances.
    let (new, refused) = match per_address {
        Some(cap) => within_cap(&mut tx, show_id, arriving, cap).await?,
        None => (arriving, HashMap::new()),
    };
    if !new.is_empty() {
        let names: Vec<&str> = new.iter().map(|(b, _)| *b).collect();
        let addresses: Vec<Option<String>> =
            new.iter().map(|(_, a)| a.map(|a| a.to_string())).collect();
        sqlx::query(
            "INSERT INTO queue_places (show_id, buyer, rank, client_addr)
             SELECT $1, b, CASE WHEN $3 THEN $4 + n - 1 END, a::inet
             FROM unnest($2::text[], $5::text[]) WITH ORDINALITY AS t(b, a, n)",
        )
        .bind(show_id)
        .bind(&names)
        .bind(room.shuffled)
        .bind(room.next_rank)
        .bind(&addresses)
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
        for (n, (buyer, _)) in new.iter().enumerate() {
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
    Ok(Joined { places, refused })
}

/// The arriving buyers whose address may take another place (in arrival order),
/// and those refused, with how many places their address has.
async fn within_cap<'a>(
    conn: &mut PgConnection,
    show_id: i64,
    arriving: Vec<(&'a str, Option<IpAddr>)>,
    cap: u32,
) -> sqlx::Result<(Vec<(&'a str, Option<IpAddr>)>, HashMap<String, i64>)> {
    let addresses: Vec<String> = arriving
        .iter()
        .filter_map(|(_, a)| a.map(|a| a.to_string()))
        .collect();
    let rows: Vec<(String, i64)> = if addresses.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT host(client_addr), count(*) FROM queue_places
             WHERE show_id = $1 AND client_addr = ANY($2::text[]::inet[])
             GROUP BY client_addr",
        )
        .bind(show_id)
        .bind(&addresses)
        .fetch_all(&mut *conn)
        .await?
    };
    let mut taken: HashMap<IpAddr, i64> = rows
        .into_iter()
        .filter_map(|(a, n)| Some((a.parse().ok()?, n)))
        .collect();
    let (mut kept, mut refused) = (Vec::new(), HashMap::new());
    for (buyer, address) in arriving {
        let Some(address) = address else {
            kept.push((buyer, None));
            continue;
        };
        let has = taken.entry(address).or_insert(0);
        if *has >= i64::from(cap) {
            refused.insert(buyer.to_string(), *has);
        } else {
            *has += 1;
            kept.push((buyer, Some(address)));
        }
    }
    Ok((kept, refused))
}
