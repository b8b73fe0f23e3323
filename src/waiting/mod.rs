//! The waiting room's database side: joining (batched), where a buyer stands, the
//! admission ticks ([`doorman`]), and the shared secret of its tokens. The rules
//! themselves (pacing, shuffle, positions, tokens) are `crate::onsale`.
//!
//! Everything that matters is in PostgreSQL: the order, the ranks, who was
//! admitted until when. An instance keeps only a cache of each show's settings
//! (dropped when the news says they changed), so a restart or a second instance
//! changes nothing.

pub mod doorman;
mod join;
mod place;
mod secret;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::onsale::{Keys, PlaceState, QueueSettings};
pub use place::Place;
use place::place;
pub use secret::admission_keys;

/// A show's waiting room as sessions need it at hand.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct QueueInfo {
    #[sqlx(flatten)]
    pub settings: QueueSettings,
    pub paused: bool,
}

/// The waiting rooms of every show: one per process, cheap to clone.
#[derive(Clone)]
pub struct Queues {
    pool: PgPool,
    keys: Keys,
    /// Each show's waiting room (`None`: it has none), read once and dropped when
    /// the news says it changed.
    known: Arc<DashMap<i64, Option<QueueInfo>>>,
    joins: mpsc::Sender<join::Ask>,
}

/// Joins waiting for the joiner beyond this are refused as `BUSY`.
const JOIN_BACKLOG: usize = 65_536;

impl Queues {
    /// The service, and the joiner task to spawn (it ends when every `Queues` is dropped).
    /// `places_per_address`: most places one client address may take in a show
    /// (`MAX_PLACES_PER_ADDRESS`, `AUTH=none` only).
    pub fn new(
        pool: PgPool,
        keys: Keys,
        places_per_address: Option<u32>,
    ) -> (Queues, impl std::future::Future<Output = ()>) {
        let (joins, asks) = mpsc::channel(JOIN_BACKLOG);
        let joiner = join::run(pool.clone(), asks, places_per_address);
        let queues = Queues {
            pool,
            keys,
            known: Arc::new(DashMap::new()),
            joins,
        };
        (queues, joiner)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The show's waiting room, if it has one.
    pub async fn of(&self, show_id: i64) -> Result<Option<QueueInfo>> {
        if let Some(known) = self.known.get(&show_id) {
            return Ok(*known);
        }
        let info: Option<QueueInfo> = sqlx::query_as(
            "SELECT admit_per_minute, max_active, pre_queue_opens_at, active_minutes, claim_secs, paused
             FROM show_queues WHERE show_id = $1",
        )
        .bind(show_id)
        .fetch_optional(&self.pool)
        .await?;
        // Bounded: only shows that exist get here (callers checked), one entry each.
        self.known.insert(show_id, info);
        Ok(info)
    }

    /// Forgets what this instance knew of the show's waiting room.
    pub fn forget(&self, show_id: i64) {
        self.known.remove(&show_id);
        doorman::forget(show_id);
    }

    /// Forgets every show's (news may have been lost).
    pub fn forget_all(&self) {
        self.known.clear();
    }

    /// Puts the buyer in the show's queue (once: joining again changes nothing) and
    /// says where they stand. Joins arriving together share a transaction. A new
    /// place is counted against `address` (`AUTH=none`; already keyed per client).
    pub async fn join(
        &self,
        show_id: i64,
        buyer: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<Place> {
        let (reply, answer) = oneshot::channel();
        let ask = join::Ask {
            show_id,
            buyer: buyer.to_string(),
            address,
            reply,
        };
        self.joins.try_send(ask).map_err(|_| Error::Busy)?;
        answer
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("the joiner stopped")))?
    }

    /// Where the buyer stands, without joining: `None` if they never joined. Asking
    /// claims an admission that waits for its buyer.
    pub async fn place(&self, show_id: i64, buyer: &str) -> Result<Option<Place>> {
        join::claim(&self.pool, show_id, &[buyer]).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            rank: Option<i64>,
            state: Option<PlaceState>,
            admitted_until: Option<DateTime<Utc>>,
            admitted_through: i64,
            admit_per_minute: i32,
        }
        let row: Option<Row> = sqlx::query_as(
                "SELECT p.rank, p.state, p.admitted_until, q.admitted_through, q.admit_per_minute
                 FROM show_queues q LEFT JOIN queue_places p ON p.show_id = q.show_id AND p.buyer = $2
                 WHERE q.show_id = $1",
            )
            .bind(show_id)
            .bind(buyer)
            .fetch_optional(&self.pool)
            .await?;
        let row = row.ok_or(Error::NoQueue)?;
        Ok(row.state.map(|state| {
            place(
                show_id,
                state,
                row.rank,
                row.admitted_until,
                row.admitted_through,
                row.admit_per_minute,
            )
        }))
    }

    /// Pauses or resumes admissions (every instance's doorman reads the flag).
    pub async fn set_paused(&self, show_id: i64, paused: bool) -> Result<()> {
        let updated =
            sqlx::query("UPDATE show_queues SET paused = $2, credit_at = now() WHERE show_id = $1")
                .bind(show_id)
                .bind(paused)
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::NoQueue);
        }
        self.forget(show_id);
        doorman::tell(&self.pool, show_id).await?;
        Ok(())
    }
}
