//! The on-sale clock: one task per instance that tells the sessions of a show that
//! its sale opened or closed, within milliseconds of the database's clock passing
//! the instant. It also reads the show news (`NOTIFY show_changes`) and passes it
//! on: an admin's change of a window, and where each waiting room stands.
//!
//! It asks the database for `now()` and the next opening or closing of any show,
//! sleeps for the difference, and then asks which instants have passed since its
//! last look. Its own clock only measures the sleep: if it wakes early, the look
//! finds nothing and it sleeps again. The booking transaction does not depend on
//! it: it checks the window against its own `now()`.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::hub::{Hub, QueueNews};
use crate::onsale::{STATE_SQL, SalesState, Window};
use crate::waiting::Queues;
use crate::waiting::doorman::Progress;

/// The longest sleep between looks: a lost notification (an admin's change while
/// the LISTEN connection was down) is noticed after at most this long.
pub const RELOOK: Duration = Duration::from_secs(5);

/// A window change as the `show_changes` notification carries it.
#[derive(Deserialize)]
struct WindowNews {
    show_id: i64,
    #[serde(flatten)]
    window: Window,
    sales: SalesState,
}

/// The frame sessions get: `sales_opened`, `sales_closed` or `sales_changed`.
#[derive(Serialize)]
struct SaleFrame {
    r#type: &'static str,
    show_id: i64,
    sales: SalesState,
    #[serde(flatten)]
    window: Window,
}

/// A show whose opening or closing passed since the last look.
#[derive(sqlx::FromRow)]
struct Passed {
    id: i64,
    #[sqlx(flatten)]
    window: Window,
    sales: SalesState,
}

/// Runs until shutdown; `news` carries the `show_changes` payloads.
pub async fn run(
    pool: PgPool,
    hub: Hub,
    queues: Queues,
    mut news: mpsc::Receiver<String>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut since: Option<DateTime<Utc>> = None;
    let mut relook = true;
    let mut deadline = tokio::time::Instant::now();
    loop {
        if relook {
            let wait = match look(&pool, &hub, since).await {
                Ok((now, next)) => {
                    since = Some(now);
                    next.and_then(|t| (t - now).to_std().ok())
                        .map_or(RELOOK, |d| d.min(RELOOK))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the on-sale clock cannot read the sale windows");
                    Duration::from_secs(1)
                }
            };
            deadline = tokio::time::Instant::now() + wait;
            relook = false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => relook = true,
            payload = news.recv() => match payload {
                // Only a window's news moves the next instant (queue news is many
                // a second in a busy on-sale, and needs no look).
                Some(payload) => match heard(&hub, &queues, &payload) {
                    Heard::Window(window) => {
                        // An opening or closing the change put just before the last
                        // look (a PATCH racing the instant) is announced by the next
                        // one; older ones were past already, and `sales_changed`
                        // said so.
                        for instant in [window.sales_open_at, window.sales_close_at].into_iter().flatten() {
                            since = since.map(|s| match s - instant {
                                d if d >= chrono::Duration::zero() && d < chrono::Duration::seconds(5) => {
                                    instant - chrono::Duration::microseconds(1)
                                }
                                _ => s,
                            });
                        }
                        relook = true;
                    }
                    Heard::Lost => relook = true,
                    Heard::Other => {}
                },
                None => return,
            },
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

/// What a piece of news was, for the clock's own timing.
enum Heard {
    Window(Window),
    /// News may have been lost: look at everything again.
    Lost,
    Other,
}

/// Announces the openings and closings that passed after `since` (none on the
/// first look: sessions read the state in their snapshot), and answers the
/// database's `now()` and the next instant to wake for.
async fn look(
    pool: &PgPool,
    hub: &Hub,
    since: Option<DateTime<Utc>>,
) -> sqlx::Result<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let (now, next): (DateTime<Utc>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT now(), least(
             (SELECT min(sales_open_at) FROM shows WHERE sales_open_at > now()),
             (SELECT min(sales_close_at) FROM shows WHERE sales_close_at > now()))",
    )
    .fetch_one(pool)
    .await?;
    if let Some(since) = since {
        let sql = format!(
            "SELECT s.id, s.sales_open_at, s.sales_close_at, {STATE_SQL} AS sales FROM shows s
             WHERE (s.sales_open_at > $1 AND s.sales_open_at <= $2)
                OR (s.sales_close_at > $1 AND s.sales_close_at <= $2)"
        );
        let passed: Vec<Passed> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(now)
            .fetch_all(pool)
            .await?;
        for show in passed {
            let kind = match show.sales {
                SalesState::Open => "sales_opened",
                SalesState::Closed => "sales_closed",
                // Moved again meanwhile: its news says so.
                SalesState::Upcoming => continue,
            };
            tracing::info!(show_id = show.id, kind, "sale window passed");
            announce(hub, kind, show.id, show.window, show.sales);
        }
    }
    Ok((now, next))
}

/// The kinds of show news.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum News {
    /// A sale window changed (`PATCH /admin/shows/:id`, or a show created with one).
    Window(WindowNews),
    /// Where a waiting room stands, after a doorman's tick.
    Queue(Progress),
    /// A waiting room's settings changed (or it was paused, resumed, removed).
    QueueSettings { show_id: i64 },
}

/// Passes on news from another instance (or this one).
fn heard(hub: &Hub, queues: &Queues, payload: &str) -> Heard {
    if payload == crate::hub::listener::NEWS_LOST {
        queues.forget_all();
        return Heard::Lost;
    }
    match serde_json::from_str::<News>(payload) {
        Ok(News::Window(news)) => {
            announce(hub, "sales_changed", news.show_id, news.window, news.sales);
            return Heard::Window(news.window);
        }
        Ok(News::Queue(progress)) => {
            crate::waiting::doorman::heard(&progress);
            let frame = match serde_json::to_string(&QueueFrame {
                r#type: "queue_progress",
                progress: &progress,
            }) {
                Ok(json) => Utf8Bytes::from(json),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize queue_progress");
                    return Heard::Other;
                }
            };
            hub.announce_queue(
                progress.show_id,
                QueueNews {
                    frame,
                    admitted_through: progress.admitted_through,
                    shuffled: progress.shuffled,
                    paused: progress.paused,
                },
            );
        }
        Ok(News::QueueSettings { show_id }) => {
            queues.forget(show_id);
            hub.show_changed(show_id);
        }
        Err(e) => tracing::warn!(error = %e, "ignoring a malformed show_changes payload"),
    }
    Heard::Other
}

/// The `queue_progress` frame: the progress as the doorman told it.
#[derive(Serialize)]
struct QueueFrame<'a> {
    r#type: &'static str,
    #[serde(flatten)]
    progress: &'a Progress,
}

fn announce(hub: &Hub, kind: &'static str, show_id: i64, window: Window, sales: SalesState) {
    let frame = SaleFrame {
        r#type: kind,
        show_id,
        sales,
        window,
    };
    match serde_json::to_string(&frame) {
        Ok(json) => hub.announce(show_id, Utf8Bytes::from(json)),
        Err(e) => tracing::error!(error = %e, "cannot serialize a sale frame"),
    }
}
