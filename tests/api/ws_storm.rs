//! A randomized storm: bookers and watchers joining and leaving, holds expiring,
//! confirms and cancels, over a few hundred seats. When it stops, every open
//! session's map must equal the database, and no seat may be in two live bookings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::helpers::{TestApp, eventually};
use crate::ws_client::{WsClient, db_map};

const SEATS: u64 = 300;
const STORM: Duration = Duration::from_secs(8);

/// xorshift64*: small, seedable, good enough to shuffle a test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

async fn booker(app: Arc<TestApp>, show: i64, seed: u64, stop: Arc<AtomicBool>) -> WsClient {
    let mut rng = Rng(seed);
    let mut client = WsClient::connect(&app, show).await;
    let mut mine: Vec<(i64, String)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match rng.below(10) {
            0..=5 => {
                let count = 1 + rng.below(4);
                let mut seats: Vec<String> = (0..count)
                    .map(|_| (1 + rng.below(SEATS)).to_string())
                    .collect();
                seats.sort();
                seats.dedup();
                let refs: Vec<&str> = seats.iter().map(String::as_str).collect();
                let reply = client.book(&refs, rng.below(2) == 0).await;
                match reply["type"].as_str() {
                    Some("booked") => {
                        let b = &reply["booking"];
                        mine.push((
                            b["id"].as_i64().unwrap(),
                            b["token"].as_str().unwrap().to_string(),
                        ));
                    }
                    Some("error") => assert_eq!(reply["code"], "SEATS_UNAVAILABLE", "{reply}"),
                    _ => panic!("unexpected reply {reply}"),
                }
            }
            6 | 7 if !mine.is_empty() => {
                let (id, token) = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let kind = if rng.below(2) == 0 {
                    "confirm"
                } else {
                    "cancel"
                };
                let reply = client
                    .request(json!({"type": kind, "booking_id": id, "token": token}))
                    .await;
                let ok = ["confirmed", "cancelled"]
                    .contains(&reply["type"].as_str().unwrap_or_default())
                    || ["BOOKING_EXPIRED", "BOOKING_NOT_PENDING"]
                        .contains(&reply["code"].as_str().unwrap_or_default());
                assert!(ok, "{kind}: {reply}");
            }
            8 => {
                // Leave and come back.
                drop(client);
                client = WsClient::connect(&app, show).await;
            }
            _ => client.drain_for(Duration::from_millis(rng.below(30))).await,
        }
    }
    client
}

async fn watcher(app: Arc<TestApp>, show: i64, seed: u64, stop: Arc<AtomicBool>) -> WsClient {
    let mut rng = Rng(seed);
    let mut client = WsClient::connect(&app, show).await;
    while !stop.load(Ordering::Relaxed) {
        client
            .drain_for(Duration::from_millis(50 + rng.below(400)))
            .await;
        if rng.below(4) == 0 {
            drop(client);
            client = WsClient::connect(&app, show).await;
        }
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_randomized_storm_ends_with_every_map_equal_to_the_database() {
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.booking.hold_ttl = Duration::from_secs(1);
            c.ws.commands_per_sec = 10_000;
        })
        .await,
    );
    let show = app.create_show(SEATS as u32).await;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("storm seed: {seed}");
    let stop = Arc::new(AtomicBool::new(false));

    let bookers: Vec<_> = (0..12)
        .map(|i| {
            tokio::spawn(booker(
                app.clone(),
                show,
                seed.wrapping_add(i * 7919),
                stop.clone(),
            ))
        })
        .collect();
    let watchers: Vec<_> = (0..24)
        .map(|i| {
            tokio::spawn(watcher(
                app.clone(),
                show,
                seed.wrapping_add(1_000 + i * 104_729),
                stop.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(STORM).await;
    stop.store(true, Ordering::Relaxed);
    let mut sessions = Vec::new();
    for task in bookers.into_iter().chain(watchers) {
        sessions.push(task.await.expect("no session task panicked"));
    }

    // Let the last holds run out, so that the database stops changing.
    eventually(Duration::from_secs(5), "every hold has ended", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT NOT EXISTS (SELECT 1 FROM bookings WHERE status = 'PENDING')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    })
    .await;
    let expected = db_map(&app, show).await;
    for session in &mut sessions {
        session.settle_to(&expected, Duration::from_secs(10)).await;
    }

    let (bookings, doubly): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM bookings),
                (SELECT count(*) FROM (SELECT bs.seat_id FROM booking_seats bs
                                       JOIN bookings b ON b.id = bs.booking_id
                                       WHERE b.status IN ('PENDING', 'CONFIRMED')
                                       GROUP BY bs.seat_id HAVING count(*) > 1) d)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(doubly, 0, "no seat is in two live bookings");
    assert!(bookings > 100, "the storm made only {bookings} bookings");
    println!(
        "storm: {bookings} bookings, {} sessions checked, {:?}",
        sessions.len(),
        started.elapsed()
    );
}
