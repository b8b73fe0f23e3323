//! The best-available scenario: how long the server takes to pick and book "the
//! best N seats" on a large show, empty and nearly sold out, one request at a time
//! and many at once, and whether every answer is N adjacent seats nobody else got.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::client::Target;
use crate::stats::Latencies;

/// What the run saw: every seat given, and answers that broke the rules.
#[derive(Default)]
struct Seen {
    seats: HashSet<String>,
    overlaps: usize,
    not_adjacent: usize,
    failed: usize,
}

pub async fn run(
    t: &Target,
    seats: u32,
    count: usize,
    clients: usize,
    requests: usize,
    sold_percent: u32,
) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(seats).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut r = Map::new();
    r.insert("seats".into(), json!(seats));
    r.insert("count".into(), json!(count));

    // One at a time, on the empty hall: the pick's own cost.
    let mut one = Latencies::default();
    for _ in 0..requests.min(200) {
        one.record(book_best(t, show, count, &seen).await?);
    }
    r.insert("empty_hall_one_at_a_time".into(), one.summary());

    // Sell most of the hall in named blocks of 10, then ask again.
    let sell_to = u64::from(seats) * u64::from(sold_percent.min(99)) / 100;
    let started = Instant::now();
    sell(t, show, sell_to, clients).await?;
    r.insert(
        "prefill_seconds".into(),
        json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
    );
    let mut full = Latencies::default();
    for _ in 0..requests.min(200) {
        full.record(book_best(t, show, count, &seen).await?);
    }
    r.insert(
        format!("hall_{sold_percent}pct_sold_one_at_a_time"),
        full.summary(),
    );

    // Many at once: throughput, and no request may fail for being concurrent.
    let started = Instant::now();
    let per_client = requests.div_ceil(clients);
    let runs = (0..clients).map(|_| {
        let seen = seen.clone();
        async move {
            let mut lat = Latencies::default();
            for _ in 0..per_client {
                lat.record(book_best(t, show, count, &seen).await?);
            }
            anyhow::Ok(lat)
        }
    });
    let mut many = Latencies::default();
    for lat in join_all(runs).await {
        many.extend(lat?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    r.insert(
        "concurrent_bookings_per_sec".into(),
        json!((many.len() as f64 / elapsed).round()),
    );
    r.insert(format!("concurrent_{clients}_clients"), many.summary());
    let seen = seen.lock().await;
    r.insert("failed".into(), json!(seen.failed));
    r.insert("overlapping_seats".into(), json!(seen.overlaps));
    r.insert("not_adjacent".into(), json!(seen.not_adjacent));
    Ok(r)
}

/// Books `count` best seats; records what it got.
async fn book_best(
    t: &Target,
    show: i64,
    count: usize,
    seen: &Mutex<Seen>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let body = json!({"user_id": "load-best", "best_available": {"count": count}});
    let (status, reply) = t.post(&format!("/shows/{show}/book"), &body).await?;
    let took = started.elapsed();
    let mut seen = seen.lock().await;
    if status != 201 {
        seen.failed += 1;
        return Ok(took);
    }
    let seats = reply["booking"]["seats"]
        .as_array()
        .context("no seats in the answer")?;
    let row = |s: &Value| (s["section"].clone(), s["row"].clone());
    let mut numbers: Vec<i64> = seats
        .iter()
        .filter_map(|s| s["number"].as_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    let one_row = seats.iter().all(|s| row(s) == row(&seats[0]));
    let together = numbers.windows(2).all(|w| w[1] == w[0] + 1);
    if seats.len() != count || !one_row || !together {
        seen.not_adjacent += 1;
    }
    for s in seats {
        if !seen
            .seats
            .insert(s["seat_no"].as_str().unwrap_or_default().to_string())
        {
            seen.overlaps += 1;
        }
    }
    Ok(took)
}

/// Books seats "1".."n" by name, 10 to a booking, from `clients` loops.
async fn sell(t: &Target, show: i64, n: u64, clients: usize) -> anyhow::Result<()> {
    let blocks: Vec<u64> = (0..n.div_ceil(10)).collect();
    let chunks: Vec<Vec<u64>> = blocks
        .chunks(blocks.len().div_ceil(clients).max(1))
        .map(<[u64]>::to_vec)
        .collect();
    let runs = chunks.into_iter().map(|chunk| async move {
        for b in chunk {
            let seat_nos: Vec<String> = (b * 10 + 1..=(b * 10 + 10).min(n))
                .map(|s| s.to_string())
                .collect();
            let (status, body) = t
                .post(
                    &format!("/shows/{show}/book"),
                    &json!({"seat_nos": seat_nos, "user_id": "prefill"}),
                )
                .await?;
            // A best-available booking of the first phase may hold one of them.
            if status != 201 && body["code"] != "SEATS_UNAVAILABLE" {
                bail!("prefill failed: {status} {body}");
            }
        }
        anyhow::Ok(())
    });
    for run in join_all(runs).await {
        run?;
    }
    Ok(())
}
