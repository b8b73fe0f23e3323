//! B5, the reconnect storm: `watchers` sessions watch one show; the server is
//! restarted under them (by whoever runs this: `bench/run` does it when this
//! prints "ready" on stderr). Every watcher reconnects with backoff and reads a
//! fresh snapshot, or with `--resume` only what its map's digest says it lacks;
//! then one more booking is made, and every map must equal the database. Reports
//! the time from the first lost connection until every watcher is back, the bytes
//! each one read to be whole again, and the snapshot queries the server made (its
//! metrics).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::{Frame, SeatMap, Target, Ws, next_text};
use crate::stats::{self, Latencies};

/// What the compact view's "state" frames add to a [`Frame`] (which reads their
/// type and part, and skips these).
#[derive(Deserialize)]
struct State<'a> {
    #[serde(default)]
    offset: usize,
    #[serde(default, borrow)]
    status: &'a str,
    #[serde(default)]
    versions: Vec<i64>,
}

/// Applies one frame; true when it completed a snapshot.
fn apply(map: &mut SeatMap, text: &str) -> anyhow::Result<bool> {
    let frame: Frame = serde_json::from_str(text)?;
    if frame.kind == "state" {
        let state: State = serde_json::from_str(text)?;
        map.apply_state(state.offset, state.status, &state.versions);
        return Ok(frame.part >= frame.parts);
    }
    map.apply(&frame);
    Ok(frame.kind == "snapshot" && frame.part >= frame.parts)
}

/// Opens a session and reads its first snapshot into `map`; returns the session
/// and the bytes that snapshot took.
async fn open(
    t: &Target,
    show: i64,
    query: &str,
    map: &mut SeatMap,
) -> anyhow::Result<(Ws, usize)> {
    let mut ws = t.connect_with(show, query).await?;
    let mut bytes = 0;
    loop {
        let text = next_text(&mut ws).await?;
        bytes += text.len();
        if apply(map, &text)? {
            return Ok((ws, bytes));
        }
    }
}

pub async fn run(
    t: &Target,
    watchers: usize,
    seats: u32,
    state: bool,
    resume: bool,
    wait_secs: u64,
) -> anyhow::Result<Map<String, Value>> {
    anyhow::ensure!(state || !resume, "--resume needs --state");
    let show = t.create_show(seats).await?;
    for n in 1..=10 {
        t.book_rest(show, &n.to_string()).await?;
    }
    let query = if state { "?snapshot=state" } else { "" };
    let mut sessions = Vec::with_capacity(watchers);
    while sessions.len() < watchers {
        let batch = (watchers - sessions.len()).min(200);
        for opened in join_all((0..batch).map(|_| async {
            let mut map = SeatMap::default();
            let (ws, _) = open(t, show, query, &mut map).await?;
            anyhow::Ok((ws, map))
        }))
        .await
        {
            sessions.push(opened?);
        }
    }
    eprintln!("reconnect-storm: {watchers} watchers ready; restart the server now");
    let origin = Instant::now();
    let deadline = origin + Duration::from_secs(wait_secs);
    let back = join_all(sessions.into_iter().map(|(mut ws, mut map)| async move {
        // Watch until the server goes away.
        loop {
            match tokio::time::timeout_at(deadline.into(), next_text(&mut ws)).await {
                Ok(Ok(text)) => {
                    apply(&mut map, &text)?;
                }
                Ok(Err(_)) => break,
                Err(_) => anyhow::bail!("the server was not restarted"),
            }
        }
        let lost = origin.elapsed();
        // Reconnect with backoff and jitter, as the web clients do.
        let mut wait = Duration::from_millis(100);
        let (ws, bytes) = loop {
            if Instant::now() >= deadline {
                anyhow::bail!("not back before the deadline");
            }
            let again = match map.digest().filter(|_| resume) {
                Some(have) => format!("{query}&have={have}"),
                None => query.to_string(),
            };
            match open(t, show, &again, &mut map).await {
                Ok(opened) => break opened,
                Err(_) => {
                    let jitter = rand_fraction() * wait.as_secs_f64();
                    tokio::time::sleep(wait / 2 + Duration::from_secs_f64(jitter)).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        };
        anyhow::Ok((ws, map, lost, origin.elapsed(), bytes))
    }))
    .await;
    let (mut outage, mut first_lost, mut last_back) = (Latencies::default(), None, Duration::ZERO);
    let mut live = Vec::new();
    let (mut failed, mut bytes_back) = (0, 0);
    for r in back {
        match r {
            Ok((ws, map, lost, at, bytes)) => {
                bytes_back += bytes;
                outage.record(at.saturating_sub(lost));
                first_lost = Some(first_lost.map_or(lost, |f: Duration| f.min(lost)));
                last_back = last_back.max(at);
                live.push((ws, map));
            }
            Err(_) => failed += 1,
        }
    }
    // One more change after the restart: everyone must see it, and then agree with
    // the database.
    t.book_rest(show, &(seats / 2).to_string()).await?;
    let settle = Instant::now() + Duration::from_secs(5);
    let truth = t.rest_seats(show).await?;
    let checks = live.into_iter().map(|(mut ws, mut map)| {
        let truth = &truth;
        async move {
            while !map.equals(truth) {
                match tokio::time::timeout_at(settle.into(), next_text(&mut ws)).await {
                    Ok(Ok(text)) => {
                        apply(&mut map, &text)?;
                    }
                    _ => return anyhow::Ok(false),
                }
            }
            Ok(true)
        }
    });
    let equal = join_all(checks)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    let metrics = t.get_text("/metrics").await.unwrap_or_default();

    let mut r = Map::new();
    r.insert("watchers".into(), json!(watchers));
    r.insert("view".into(), json!(if state { "state" } else { "full" }));
    r.insert("resume".into(), json!(resume));
    r.insert("back".into(), json!(watchers - failed));
    r.insert(
        "equal_to_database".into(),
        json!(format!("{equal}/{watchers}")),
    );
    let all_back = last_back.saturating_sub(first_lost.unwrap_or_default());
    r.insert("all_back_seconds".into(), stats::seconds(all_back));
    r.insert("outage_per_watcher".into(), outage.summary());
    r.insert(
        "bytes_per_reconnect".into(),
        json!(bytes_back / (watchers - failed).max(1)),
    );
    r.insert(
        "snapshot_reads_after_restart".into(),
        by_label(&metrics, "boxoffice_snapshot_reads_total"),
    );
    r.insert(
        "resumes_after_restart".into(),
        by_label(&metrics, "boxoffice_resumes_total"),
    );
    Ok(r)
}

/// A counter of the server's metrics text (since it started), by its one label.
fn by_label(metrics: &str, name: &str) -> Value {
    let mut counts = Map::new();
    let prefix = format!("{name}{{");
    for line in metrics.lines().filter(|l| l.starts_with(&prefix)) {
        if let (Some(label), Some(n)) = (line.split('"').nth(1), line.rsplit(' ').next()) {
            counts.insert(label.to_string(), json!(n.parse::<f64>().unwrap_or(0.0)));
        }
    }
    Value::Object(counts)
}

/// A cheap jitter source: the clock's nanoseconds.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}
