//! The on-sale: a show with a sale window and a waiting room. `buyers` sessions
//! gather in the pre-queue before the opening; at the opening they are shuffled and
//! let in at the queue's pace, and each admitted session books at once.
//!
//! Reports how fast the crowd joined, how many bytes a waiting session received per
//! minute of waiting (its own `queue` frames and the shared `queue_progress`), and
//! the time from `admitted` to `booked`.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};

use crate::client::{Target, Ws, next_text, send_json};
use crate::stats::{self, Latencies};

pub struct OnSale {
    pub buyers: usize,
    pub seats: u32,
    pub admit_per_minute: u32,
    pub max_active: u32,
    /// Joins are spread over this window; the sale opens right after it.
    pub gather: Duration,
    /// How long after the opening sessions keep waiting for their turn.
    pub after: Duration,
}

/// What one buyer's session saw.
#[derive(Default)]
struct Seen {
    /// From the start of the upgrade to its first `queue` frame.
    joined: Option<Duration>,
    /// Bytes of `queue` and `queue_progress` frames while waiting, and for how long.
    waiting_bytes: usize,
    waited: Duration,
    admitted: bool,
    /// From `admitted` to the `booked` reply.
    booked: Option<Duration>,
}

pub async fn run(t: &Target, sale: &OnSale) -> anyhow::Result<Map<String, Value>> {
    let opens_at = chrono_like_now() + sale.gather + Duration::from_secs(2);
    let show = create(t, sale, opens_at).await?;
    let start = Instant::now();
    let every = sale.gather / sale.buyers.max(1) as u32;
    let deadline = start + sale.gather + Duration::from_secs(2) + sale.after;
    let sessions = (0..sale.buyers).map(|i| async move {
        tokio::time::sleep_until((start + every * i as u32).into()).await;
        buyer(t, show, i, deadline).await
    });
    let seen: Vec<anyhow::Result<Seen>> = join_all(sessions).await;
    let gather_secs = (every * sale.buyers as u32).as_secs_f64().max(0.001);
    let (mut joined, mut booked) = (Latencies::default(), Latencies::default());
    let (mut failed, mut admitted, mut bytes, mut waited) = (0, 0, 0usize, 0f64);
    let mut errors = std::collections::BTreeMap::new();
    for s in seen {
        match s {
            Ok(s) => {
                if let Some(d) = s.joined {
                    joined.record(d);
                }
                if let Some(d) = s.booked {
                    booked.record(d);
                }
                admitted += usize::from(s.admitted);
                bytes += s.waiting_bytes;
                waited += s.waited.as_secs_f64();
            }
            Err(e) => {
                failed += 1;
                let why = e.to_string().chars().take(60).collect::<String>();
                *errors.entry(why).or_insert(0usize) += 1;
            }
        }
    }
    let mut r = Map::new();
    r.insert("errors".into(), json!(errors));
    r.insert("buyers".into(), json!(sale.buyers));
    r.insert("failed".into(), json!(failed));
    r.insert("admit_per_minute".into(), json!(sale.admit_per_minute));
    r.insert("max_active".into(), json!(sale.max_active));
    r.insert("joined".into(), json!(joined.len()));
    r.insert(
        "joins_per_sec".into(),
        json!((joined.len() as f64 / gather_secs).round()),
    );
    r.insert("time_to_place".into(), joined.summary());
    r.insert(
        "bytes_per_waiting_session_per_minute".into(),
        json!((bytes as f64 / (waited / 60.0).max(1e-9)).round()),
    );
    r.insert("admitted".into(), json!(admitted));
    r.insert("booked".into(), json!(booked.len()));
    r.insert("admission_to_booking".into(), booked.summary());
    r.insert("run_seconds".into(), stats::seconds(start.elapsed()));
    Ok(r)
}

/// Wall-clock now (the server's clock on this machine).
fn chrono_like_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

async fn create(t: &Target, sale: &OnSale, opens_at: std::time::SystemTime) -> anyhow::Result<i64> {
    let opens = opens_at.duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let body = json!({
        "name": "load on-sale", "start_time": "2030-01-01T20:00:00Z", "total_seats": sale.seats,
        "sales_open_at": rfc3339_millis(opens),
        "queue": {"admit_per_minute": sale.admit_per_minute, "max_active": sale.max_active, "active_minutes": 10},
    });
    let (status, created) = t.post_admin("/admin/shows", &body).await?;
    anyhow::ensure!(
        status == 201,
        "creating the show failed: {status} {created}"
    );
    created["show"]["id"].as_i64().context("no show id")
}

fn rfc3339_millis(unix_ms: i64) -> String {
    // Days from the civil calendar (Howard Hinnant's algorithm), to stay free of a
    // date crate in the load tool.
    let (secs, ms) = (unix_ms.div_euclid(1000), unix_ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

/// One buyer: joins by opening the session, waits, books two seats the moment it
/// is admitted (best available), and leaves.
async fn buyer(t: &Target, show: i64, i: usize, deadline: Instant) -> anyhow::Result<Seen> {
    let began = Instant::now();
    let mut ws: Ws = t.connect_with(show, "?snapshot=state&runs=true").await?;
    let mut seen = Seen::default();
    let mut waiting_since = None;
    let mut admitted_at = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(text) = tokio::time::timeout(left, next_text(&mut ws)).await else {
            break;
        };
        let text = text?;
        // Only the type: every sale is shown to every session (seats_changed), and
        // parsing those whole would make the load tool the bottleneck.
        let head: Head = serde_json::from_str(&text)?;
        match head.kind {
            "queue" if seen.joined.is_none() => {
                seen.joined = Some(began.elapsed());
                waiting_since = Some(Instant::now());
                seen.waiting_bytes += text.len();
            }
            "queue" | "queue_progress" if admitted_at.is_none() => seen.waiting_bytes += text.len(),
            "admitted" => {
                seen.admitted = true;
                admitted_at = Some(Instant::now());
                if let Some(since) = waiting_since.take() {
                    seen.waited = since.elapsed();
                }
                let book = json!({"type": "book", "request_id": format!("b{i}"), "user_id": format!("buyer{i}"),
                    "immediate_confirm": true, "best_available": {"count": 2, "allow_split": true}});
                send_json(&mut ws, &book).await?;
            }
            "booked" => {
                seen.booked = admitted_at.map(|at| at.elapsed());
                break;
            }
            "error" if admitted_at.is_some() => break,
            _ => {}
        }
    }
    if let Some(since) = waiting_since {
        seen.waited = since.elapsed();
    }
    let _ = ws.close(None).await;
    Ok(seen)
}
