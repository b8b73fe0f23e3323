//! Faults injected for real: clients that stop reading, strangers with wrong
//! tokens, floods of unknown ids, and a database that goes away mid-storm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::fault_proxy::FaultProxy;
use crate::helpers::{
    DedicatedCluster, TestApp, assert_bookings_consistent, assert_error, create_show_at,
};
use crate::ws_client::WsClient;

/// Transactions of this database open longer than `secs`.
async fn long_transactions(app: &TestApp, secs: f64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND xact_start < now() - make_interval(secs => $1)",
    )
    .bind(secs)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Books each seat of `seats` once over REST, one after another; returns the
/// slowest answer.
async fn slowest_booking(app: &TestApp, show: i64, seats: std::ops::Range<u32>) -> Duration {
    let mut slowest = Duration::ZERO;
    for n in seats {
        let start = Instant::now();
        app.book_ok(show, &[&n.to_string()], true).await;
        slowest = slowest.max(start.elapsed());
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_with_a_confirm_in_flight_stalls_nobody_else() {
    let app = TestApp::spawn_with(|c| c.ws.send_timeout = Duration::from_secs(2)).await;
    let show = app.create_show(100).await;
    let (booking, token) = app.book_ok(show, &["1"], false).await;

    let mut stuck = WsClient::connect_with_small_buffer(&app, show).await;
    stuck
        .send_json(json!({"type": "confirm", "booking_id": booking, "token": token}))
        .await;
    // Junk whose error replies fill the socket; the client never reads again. It
    // floods until its own sends block for longer than the server's send timeout
    // (the server stopped reading) or fail (the server closed the connection): a
    // fixed count, or a short block while the server is merely busy, may end the
    // flood before the replies outgrow the kernel's buffers, and then there is no
    // stall to detect.
    let flood = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                stuck.try_send_raw(Message::text("junk")),
            );
            if !matches!(sent.await, Ok(Ok(()))) {
                break;
            }
        }
        stuck
    });

    crate::helpers::eventually(Duration::from_secs(5), "the confirm commits", || async {
        app.seat_status(show, "1").await == "BOOKED"
    })
    .await;
    let slowest = slowest_booking(&app, show, 2..22).await;
    println!("slowest of 20 other bookings beside a stuck client: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        long_transactions(&app, 5.0).await,
        0,
        "no transaction stays open"
    );

    // The server gives up on the client after the send timeout and closes it.
    let mut stuck = flood.await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(msg)) = stuck.next_raw().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the server closed the stuck session");
    assert!(matches!(closed, None | Some(4001)), "{closed:?}");
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_waiting_for_the_bookings_lock() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (booking, _) = app.book_ok(show, &["1"], false).await;
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE")
        .bind(booking)
        .execute(&mut *holder)
        .await
        .unwrap();

    let start = Instant::now();
    assert_error(
        &app.confirm(booking, "not-the-token").await,
        401,
        "UNAUTHORIZED",
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "answered while the row stayed locked: {:?}",
        start.elapsed()
    );
    holder.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bookings_of_unknown_seats_and_shows_cannot_exhaust_the_pool() {
    let app = TestApp::spawn_with(|c| c.database.pool_size = 4).await;
    let show = app.create_show(5).await;
    let app = &app;
    let start = Instant::now();
    let unknown_seats = join_all(
        (0..32).map(|i| async move { app.book(show, &[&format!("nope-{i}")], true).await }),
    );
    let unknown_shows =
        join_all((0..32).map(|i| async move { app.book(1_000_000 + i, &["1"], true).await }));
    let (seats, shows) = tokio::join!(unknown_seats, unknown_shows);
    assert!(
        seats
            .iter()
            .all(|(s, b)| *s == 409 && b["code"] == "SEATS_NOT_FOUND")
    );
    assert!(
        shows
            .iter()
            .all(|(s, b)| *s == 404 && b["code"] == "SHOW_NOT_FOUND")
    );
    println!(
        "64 unknown-seat and unknown-show bookings, pool of 4: {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let (status, _) = app.get(&format!("/shows/{show}")).await;
    assert_eq!(status, 200);
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_bookings_of_unknown_shows_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm up the client's and server's 32 connections before measuring.
    join_all((0..32).map(|i| app.book(999_000_000 + i, &["1"], true))).await;
    let (tasks_before, rss_before) = (metrics.num_alive_tasks(), resident_kib());
    let next = Arc::new(std::sync::atomic::AtomicI64::new(1_000_000));
    let app = &app;
    let workers = (0..32).map(|_| {
        let next = next.clone();
        async move {
            loop {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if id >= 1_020_000 {
                    return;
                }
                assert_error(&app.book(id, &["1"], true).await, 404, "SHOW_NOT_FOUND");
            }
        }
    });
    join_all(workers).await;
    let (tasks_after, rss_after) = (metrics.num_alive_tasks(), resident_kib());
    println!(
        "20,000 unknown shows: tasks {tasks_before} -> {tasks_after}, RSS {} -> {} MiB",
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(
        tasks_after <= tasks_before + 40,
        "tasks {tasks_before} -> {tasks_after}"
    );
    // RSS is the whole test process's, other tests included: the bound only
    // catches a leak of the old size (hundreds of MiB for 20,000 ids).
    assert!(
        rss_after < rss_before + 128 * 1024,
        "RSS {rss_before} -> {rss_after} KiB"
    );
}

/// One request of a storm: when it was sent (since the storm began), how long it
/// took, and its answer.
struct Answer {
    sent: Duration,
    took: Duration,
    status: u16,
    body: Value,
}

/// Books random single seats from `clients` loops for `length`.
async fn storm(
    app: &TestApp,
    show: i64,
    seats: u32,
    clients: usize,
    length: Duration,
) -> Vec<Answer> {
    let began = Instant::now();
    let loops = (0..clients).map(|c| async move {
        let mut answers = Vec::new();
        let mut k = 0;
        while began.elapsed() < length {
            // Each loop walks its own seats, so a 409 means a real conflict.
            let n = (c as u32 + k * clients as u32) % seats + 1;
            k += 1;
            let sent = began.elapsed();
            let (status, body) = app.book(show, &[&n.to_string()], true).await;
            answers.push(Answer {
                sent,
                took: began.elapsed() - sent,
                status,
                body,
            });
            if status == 503 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        answers
    });
    join_all(loops).await.into_iter().flatten().collect()
}

fn acknowledged(answers: &[Answer]) -> Vec<(i64, Vec<String>)> {
    answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| {
            let b = &a.body["booking"];
            let seats = b["seat_nos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            (b["id"].as_i64().unwrap(), seats)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stopped_for_ten_seconds_mid_storm() {
    let mut cluster = DedicatedCluster::start("outage").await;
    let app = TestApp::spawn_on("postgres".into(), cluster.url(), |_| {}).await;
    let show = app.create_show(20_000).await;
    let mut watcher = WsClient::connect(&app, show).await;

    let began = Instant::now();
    let storm = storm(&app, show, 20_000, 16, Duration::from_secs(16));
    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let down = began.elapsed();
        cluster.stop().await;
        // A WebSocket command while the database is away: a prompt error, and the
        // session stays open.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let asked = Instant::now();
        let reply = watcher.book(&["19999"], true).await;
        let ws_answer = asked.elapsed();
        assert_eq!(reply["code"], "DATABASE_UNAVAILABLE", "{reply}");
        tokio::time::sleep(Duration::from_secs(8).saturating_sub(ws_answer)).await;
        cluster.start_again().await;
        (down, began.elapsed(), ws_answer)
    };
    let (answers, (down, up, ws_answer)) = tokio::join!(storm, fault);
    println!("a WebSocket booking during the outage was answered in {ws_answer:?}");
    assert!(ws_answer <= Duration::from_secs(5), "{ws_answer:?}");
    // Every session resynchronises once the database is back.
    let expected = crate::ws_client::db_map(&app, show).await;
    watcher.settle_to(&expected, Duration::from_secs(5)).await;

    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    // How soon after `since` the first answer of `status`, to a request sent since, came.
    let first_after = |status: u16, since: Duration| {
        answers
            .iter()
            .filter(|a| a.status == status && a.sent >= since)
            .map(|a| a.sent + a.took - since)
            .min()
    };
    let first_503 = first_after(503, down).expect("some answers during the outage");
    let recovered = first_after(201, up).expect("bookings work again after the outage");
    println!(
        "outage: {} answers, slowest {slowest:?}, first 503 {first_503:?} after the stop, first 201 {recovered:?} after the start",
        answers.len()
    );
    for a in &answers {
        assert!(
            matches!(a.status, 201 | 409 | 503),
            "unexpected answer {} {}",
            a.status,
            a.body
        );
        // A booking whose COMMIT was on the wire when the database stopped cannot
        // be told apart from one that never committed while the database stays
        // down longer than the server may wait to ask: it says so (rare; seen once).
        if a.status == 503 {
            assert!(
                matches!(
                    a.body["code"].as_str(),
                    Some("DATABASE_UNAVAILABLE" | "OUTCOME_UNKNOWN")
                ),
                "{}",
                a.body
            );
        }
    }
    assert!(
        slowest <= Duration::from_secs(5),
        "slowest answer {slowest:?}"
    );
    assert!(
        recovered <= Duration::from_secs(5),
        "recovery took {recovered:?}"
    );
    assert_bookings_consistent(&app.pool, &acknowledged(&answers)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_fast_restart_mid_storm_loses_no_acknowledged_booking() {
    let mut cluster = DedicatedCluster::start("fast-restart").await;
    let app = TestApp::spawn_on("postgres".into(), cluster.url(), |_| {}).await;
    let show = app.create_show(3000).await;
    let storm = storm(&app, show, 3000, 16, Duration::from_secs(5));
    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.stop().await;
        cluster.start_again().await;
    };
    let (answers, ()) = tokio::join!(storm, fault);
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    println!(
        "fast restart: {} answers, slowest {slowest:?}",
        answers.len()
    );
    assert!(
        slowest <= Duration::from_secs(5),
        "slowest answer {slowest:?}"
    );
    assert!(answers.iter().all(|a| matches!(a.status, 201 | 409 | 503)));
    assert_bookings_consistent(&app.pool, &acknowledged(&answers)).await;
}

/// A server whose database connections run through a [`FaultProxy`].
async fn behind_a_fault_proxy() -> (TestApp, FaultProxy) {
    let (name, url) = crate::helpers::fresh_database().await;
    let proxy = FaultProxy::start(&url).await;
    let app = TestApp::spawn_on(name, proxy.url.clone(), |_| {}).await;
    (app, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_whose_commit_reply_is_lost_is_answered_as_written() {
    let (app, proxy) = behind_a_fault_proxy().await;
    let show = app.create_show(5).await;
    proxy.cut_next_booking_commit(true);
    let (status, body) = app.book(show, &["2"], true).await;
    assert_eq!(proxy.cuts(), 1, "the connection was cut after COMMIT");
    assert_eq!(
        status, 201,
        "the booking was written, so it is a 201: {body}"
    );
    assert_eq!(app.seat_status(show, "2").await, "BOOKED");
    let id = body["booking"]["id"].as_i64().unwrap();
    let token = body["booking"]["token"].as_str().unwrap();
    assert_bookings_consistent(&app.pool, &[(id, vec!["2".into()])]).await;
    // The token handed out is the one stored.
    let (status, _) = app.cancel(id, token).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_whose_commit_never_arrived_is_answered_as_not_made() {
    let (app, proxy) = behind_a_fault_proxy().await;
    let show = app.create_show(5).await;
    proxy.cut_next_booking_commit(false);
    let answer = app.book(show, &["2"], true).await;
    assert_eq!(proxy.cuts(), 1, "the connection was cut instead of COMMIT");
    assert_error(&answer, 503, "DATABASE_UNAVAILABLE");
    assert_eq!(app.seat_status(show, "2").await, "AVAILABLE");
    // And the seat can be booked now.
    app.book_ok(show, &["2"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_storm_loses_no_acknowledged_booking() {
    let (_, url) = crate::helpers::fresh_database().await;
    let pool = boxoffice::db::connect(&url, 2).await.unwrap();
    let (mut child, addr) = crate::helpers::spawn_binary(&url).await;
    let client = reqwest::Client::new();
    let show = create_show_at(&client, addr, "Storm", 20000).await;

    let began = Instant::now();
    let loops = (0..16u32).map(|c| {
        let client = client.clone();
        async move {
            let mut acked = Vec::new();
            let mut k = 0;
            while began.elapsed() < Duration::from_secs(4) {
                let seat = (c + k * 16 + 1).to_string();
                k += 1;
                let sent = client
                    .post(format!("http://{addr}/shows/{show}/book"))
                    .json(&json!({"seat_nos": [seat], "user_id": "storm"}))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != 201 {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                acked.push((body["booking"]["id"].as_i64().unwrap(), vec![seat]));
            }
            acked
        }
    });
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    };
    let (acked, ()) = tokio::join!(join_all(loops), killer);
    let acked: Vec<(i64, Vec<String>)> = acked.into_iter().flatten().collect();
    println!(
        "kill -9: {} bookings acknowledged before the kill",
        acked.len()
    );
    assert!(!acked.is_empty());
    assert_bookings_consistent(&pool, &acked).await;

    // A restarted server carries on from the database.
    let (mut child, addr) = crate::helpers::spawn_binary(&url).await;
    let booked = client
        .post(format!("http://{addr}/shows/{show}/book"))
        .json(&json!({"seat_nos": ["19999"], "user_id": "after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status(), 201);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_booking_queues_retire_and_come_back() {
    let app = TestApp::spawn_with(|c| c.booking.queue_idle = Duration::from_secs(1)).await;
    let warm_up = app.create_show(1).await;
    let mut shows = Vec::new();
    for _ in 0..20 {
        shows.push(app.create_show(2).await);
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    app.book_ok(warm_up, &["1"], true).await;
    let before = metrics.num_alive_tasks();
    for &show in &shows {
        app.book_ok(show, &["1"], true).await;
    }
    let busy = metrics.num_alive_tasks();
    assert!(
        busy >= before + 38,
        "two workers per booked show: {before} -> {busy}"
    );
    crate::helpers::eventually(Duration::from_secs(5), "idle queues retire", || async {
        metrics.num_alive_tasks() <= before
    })
    .await;
    // The next booking of a retired show starts its queue again.
    app.book_ok(shows[0], &["2"], true).await;
}
