//! The real-time guarantee: when changes stop, every session's map equals the
//! database, whatever happened on the way (lag, lost notifications, other instances).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{DedicatedCluster, TestApp, eventually};
use crate::ws_client::{WsClient, db_map};

const SOON: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_expiring_hold_reaches_everyone_within_a_second_of_its_deadline() {
    let app = TestApp::spawn_with(|c| c.booking.hold_ttl = Duration::from_secs(1)).await;
    let show = app.create_show(5).await;
    let mut a = WsClient::connect(&app, show).await;
    let mut b = WsClient::connect(&app, show).await;
    let booked = a.book(&["2", "3"], false).await;
    let made = Instant::now();
    assert_eq!(booked["type"], "booked");

    for client in [&mut a, &mut b] {
        client
            .until(Duration::from_secs(3), |f| {
                f["type"] == "seats_changed" && f["seats"][0]["status"] == "AVAILABLE"
            })
            .await;
        assert!(
            made.elapsed() < Duration::from_secs(2),
            "TTL + 1 s: {:?}",
            made.elapsed()
        );
        assert_eq!(client.map["2"], ("AVAILABLE".to_string(), 2));
        assert_eq!(client.map["3"], ("AVAILABLE".to_string(), 2));
    }
}

#[tokio::test]
async fn an_update_typed_into_psql_reaches_everyone() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, _) = app.book_ok(show, &["4"], true).await;
    let mut watchers = vec![
        WsClient::connect(&app, show).await,
        WsClient::connect(&app, show).await,
    ];

    // An operator cancels booking `id` by hand, without touching versions.
    let mut tx = app.pool.begin().await.unwrap();
    for sql in [
        "UPDATE bookings SET status = 'CANCELLED' WHERE id = $1",
        "UPDATE booking_seats SET live = false WHERE booking_id = $1",
        "UPDATE seats SET status = 'AVAILABLE', booking_id = NULL WHERE booking_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();

    let expected = db_map(&app, show).await;
    assert_eq!(
        expected["4"],
        ("AVAILABLE".to_string(), 2),
        "the trigger raised the version"
    );
    for w in &mut watchers {
        w.settle_to(&expected, SOON).await;
    }
}

#[tokio::test]
async fn a_booking_through_one_instance_reaches_sessions_on_another() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let show = a.create_show(6).await;
    let mut on_b = WsClient::connect(&b, show).await;
    let mut on_a = WsClient::connect(&a, show).await;
    assert_eq!(on_a.book(&["5"], true).await["type"], "booked");
    let change = on_b.until(SOON, |f| f["type"] == "seats_changed").await;
    assert_eq!(
        change["seats"],
        json!([{"seat_no": "5", "status": "BOOKED", "version": 1}])
    );
}

#[tokio::test]
async fn a_booking_of_a_thousand_seats_arrives_whole() {
    let app = TestApp::spawn_with(|c| c.booking.max_seats_per_booking = 1000).await;
    let show = app.create_show(1200).await;
    let mut watcher = WsClient::connect(&app, show).await;
    let seats: Vec<String> = (101..=1100).map(|n| n.to_string()).collect();
    let (status, body) = app
        .post(
            &format!("/shows/{show}/book"),
            &json!({"seat_nos": seats, "user_id": "big"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let expected = db_map(&app, show).await;
    watcher.settle_to(&expected, SOON).await;
    assert_eq!(
        watcher.map.values().filter(|(s, _)| s == "BOOKED").count(),
        1000
    );
}

#[tokio::test]
async fn an_expiry_sweep_freeing_ten_thousand_seats_arrives_whole() {
    let app = TestApp::spawn_with(|c| c.booking.max_seats_per_booking = 1000).await;
    let show = app.create_show(10_000).await;
    let mut ids = Vec::new();
    for block in 0..10 {
        let seats: Vec<String> = (1..=1000).map(|n| (block * 1000 + n).to_string()).collect();
        let body = json!({"seat_nos": seats, "user_id": "h", "immediate_confirm": false});
        let (status, reply) = app.post(&format!("/shows/{show}/book"), &body).await;
        assert_eq!(status, 201, "{reply}");
        ids.push(reply["booking"]["id"].as_i64().unwrap());
    }
    let mut watcher = WsClient::connect(&app, show).await;
    assert!(watcher.map.values().all(|(s, _)| s == "RESERVED"));
    // All ten holds fall due at once: one sweep frees all 10,000 seats.
    sqlx::query("UPDATE bookings SET expires_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&app.pool)
        .await
        .unwrap();
    app.another_instance().await; // a fresh worker wakes at once and sweeps
    eventually(SOON, "all holds expired", || async {
        app.seat_status(show, "10000").await == "AVAILABLE"
    })
    .await;
    let expected = db_map(&app, show).await;
    assert!(expected.values().all(|(s, _)| s == "AVAILABLE"));
    watcher.settle_to(&expected, SOON).await;
    assert_eq!(
        watcher.snapshots, 1,
        "every change arrived as a change, no resync needed"
    );
}

#[tokio::test]
async fn sessions_joining_while_bookings_commit_converge() {
    let app = TestApp::spawn().await;
    let show = app.create_show(120).await;
    let app = &app;
    let bookings = join_all(
        (1..=120).map(|n| async move { app.book(show, &[&n.to_string()], n % 2 == 0).await }),
    );
    let joins = join_all((0..20).map(|_| WsClient::connect(app, show)));
    let (_, mut clients) = tokio::join!(bookings, joins);
    let expected = db_map(app, show).await;
    for c in &mut clients {
        c.settle_to(&expected, SOON).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_resynchronised_not_dropped() {
    // The client pauses while the changes are written, however long a busy machine
    // takes to write them; a pause past WS_SEND_TIMEOUT_SECS would end it (4001),
    // which is the stuck-client test's business, not this one's.
    let app = TestApp::spawn_with(|c| c.ws.send_timeout = Duration::from_secs(120)).await;
    let show = app.create_show(2000).await;
    let mut slow = WsClient::connect_with_small_buffer(&app, show).await;
    // Far more change traffic than the socket buffers and the show's channel hold,
    // while the client reads nothing.
    for _ in 0..100 {
        sqlx::query("UPDATE seats SET version = version + 1 WHERE show_id = $1")
            .bind(show)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expected = db_map(&app, show).await;
    // It catches up through merged frames or a fresh snapshot, whichever the
    // server's buffers allowed; either way its map ends equal to the database.
    slow.settle_to(&expected, Duration::from_secs(20)).await;
    let pong = slow.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong", "and it is still open");
}

#[tokio::test]
async fn killing_the_listen_connection_resynchronises_every_session() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let mut clients = vec![
        WsClient::connect(&app, show).await,
        WsClient::connect(&app, show).await,
    ];
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one LISTEN connection per instance");
    // A change that may fall into the gap while the listener reconnects.
    app.book_ok(show, &["1"], true).await;

    let expected = db_map(&app, show).await;
    for c in &mut clients {
        c.until(SOON, |f| f["type"] == "snapshot").await;
        c.settle_to(&expected, SOON).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_postgres_restart_sessions_resync_and_waiting_bookings_succeed() {
    let mut cluster = DedicatedCluster::start("restart").await;
    let app = TestApp::spawn_on("postgres".into(), cluster.url(), |_| {}).await;
    let show = app.create_show(5).await;
    let mut watcher = WsClient::connect(&app, show).await;

    cluster.stop().await;
    let booking = tokio::spawn({
        let request = app.client.post(app.url(&format!("/shows/{show}/book")));
        request
            .json(&json!({"seat_nos": ["3"], "user_id": "patient"}))
            .send()
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.start_again().await;

    let response = booking.await.unwrap().expect("answered");
    assert_eq!(
        response.status(),
        201,
        "the booking waited for the database to come back"
    );
    let expected = db_map(&app, show).await;
    assert_eq!(expected["3"].0, "BOOKED");
    watcher.until(SOON, |f| f["type"] == "snapshot").await;
    watcher.settle_to(&expected, SOON).await;
}

#[tokio::test]
async fn shutdown_finishes_commands_then_closes_sessions_with_1001() {
    let mut app = TestApp::spawn().await;
    let show = app.create_show(3).await;
    let mut client = WsClient::connect(&app, show).await;

    let blocker = app.lock_seat(show, "1").await;
    client
        .send_json(json!({"type": "book", "request_id": "late", "seat_nos": ["1"], "user_id": "u"}))
        .await;
    app.until_a_transaction_waits_for_a_lock().await;

    let server = app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    blocker.commit().await.unwrap();
    let reply = client.until(SOON, |f| f["request_id"] == "late").await;
    assert_eq!(reply["type"], "booked", "{reply}");
    let close = client.closed(SOON).await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    server.await.unwrap().expect("clean shutdown");
}
