//! B2: the flash sale over REST. `connections` HTTP/1.1 keep-alive clients book
//! distinct pairs of seats of one show as fast as their answers come back.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Map, Value, json};

use crate::client::Target;
use crate::stats::Latencies;

pub async fn run(
    t: &Target,
    connections: usize,
    seats: u32,
    seats_per_booking: usize,
    seconds: u64,
    server_pid: Option<u32>,
) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(seats).await?;
    let cpu = crate::cpu::Window::start(server_pid)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let per_booker = seats as usize / connections / seats_per_booking;
    let runs = (0..connections).map(|c| async move {
        // One client per connection, so each keeps its own keep-alive socket.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let (mut lat, mut booked, mut failed) = (Latencies::default(), 0u64, 0u64);
        for k in 0..per_booker {
            if Instant::now() >= deadline {
                break;
            }
            // Booker c takes pairs c, c + connections, ...: nobody collides.
            let first = (k * connections + c) * seats_per_booking + 1;
            let seat_nos: Vec<String> = (first..first + seats_per_booking)
                .map(|s| s.to_string())
                .collect();
            let body = json!({"seat_nos": seat_nos, "user_id": format!("rest{c}")});
            let sent = Instant::now();
            let status = http
                .post(format!("{}/shows/{show}/book", t.base))
                .json(&body)
                .send()
                .await?
                .status();
            lat.record(sent.elapsed());
            if status.as_u16() == 201 {
                booked += 1;
            } else {
                failed += 1;
            }
        }
        anyhow::Ok((lat, booked, failed))
    });
    let (mut lat, mut booked, mut failed) = (Latencies::default(), 0, 0);
    for run in join_all(runs).await {
        let (l, b, f) = run?;
        lat.extend(l);
        booked += b;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let spent = cpu.stop()?;
    let mut r = Map::new();
    r.insert("connections".into(), json!(connections));
    r.insert("bookings".into(), json!(booked));
    r.insert("failed".into(), json!(failed));
    r.insert(
        "bookings_per_sec".into(),
        json!((booked as f64 / elapsed * 10.0).round() / 10.0),
    );
    r.insert("booking_latency".into(), lat.summary());
    spent.report(booked, "booking", &mut r);
    Ok(r)
}
