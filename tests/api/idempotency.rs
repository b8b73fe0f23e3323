//! Idempotent retries: one key, one booking, and every retry learns what happened.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};
use crate::ws_client::WsClient;

async fn book_with_key(app: &TestApp, show: i64, seats: &[&str], key: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/shows/{show}/book")))
        .header("Idempotency-Key", key)
        .json(&json!({"seat_nos": seats, "user_id": "retrier"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn bookings_of(app: &TestApp, show: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM bookings WHERE show_id = $1")
        .bind(show)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_books_nothing_more() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (status, first) = book_with_key(&app, show, &["1", "2"], "key-1").await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = book_with_key(&app, show, &["1", "2"], "key-1").await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        again["booking"], first["booking"],
        "same booking, token included"
    );
    assert_eq!(bookings_of(&app, show).await, 1);

    let reused = book_with_key(&app, show, &["3"], "key-1").await;
    assert_error(&reused, 422, "IDEMPOTENCY_KEY_REUSED");
    let bad = book_with_key(&app, show, &["3"], "no spaces").await;
    assert_error(&bad, 400, "VALIDATION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_across_two_instances_make_exactly_one_booking() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let show = a.create_show(5).await;
    let (a_ref, b_ref) = (&a, &b);
    let answers = join_all((0..20).map(|i| async move {
        let app = if i % 2 == 0 { a_ref } else { b_ref };
        book_with_key(app, show, &["4"], "one-key").await
    }))
    .await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|(_, body)| &body["booking"]["id"])
        .collect();
    assert!(answers.iter().all(|(s, _)| *s == 201), "{answers:?}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one booking answers all: {ids:?}"
    );
    assert_eq!(bookings_of(&a, show).await, 1);
}

#[tokio::test]
async fn a_retry_after_a_restart_or_a_lost_reply_learns_what_happened() {
    let mut app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    // The first request's client gives up before the reply (the booking waits on a
    // row lock meanwhile), but the booking still commits.
    let blocker = app.lock_seat(show, "5").await;
    let impatient = app
        .client
        .post(app.url(&format!("/shows/{show}/book")))
        .header("Idempotency-Key", "lost-reply")
        .timeout(Duration::from_millis(300))
        .json(&json!({"seat_nos": ["5"], "user_id": "retrier"}))
        .send()
        .await;
    assert!(impatient.is_err(), "the client gave up");
    blocker.commit().await.unwrap();
    crate::helpers::eventually(Duration::from_secs(5), "the booking commits", || async {
        app.seat_status(show, "5").await == "BOOKED"
    })
    .await;

    // A new instance, as after a restart, answers the retry with that booking.
    let second = app.another_instance().await;
    app.stop().await;
    let (status, body) = book_with_key(&second, show, &["5"], "lost-reply").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["booking"]["seat_nos"], json!(["5"]));
    assert_eq!(bookings_of(&second, show).await, 1);
    // Its token is the real one.
    let id = body["booking"]["id"].as_i64().unwrap();
    let token = body["booking"]["token"].as_str().unwrap();
    let (status, _) = second.cancel(id, token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn websocket_bookings_take_an_idempotency_key_too() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let mut ws = WsClient::connect(&app, show).await;
    let command =
        json!({"type": "book", "seat_nos": ["3"], "user_id": "ws", "idempotency_key": "ws-key"});
    let first = ws.request(command.clone()).await;
    let again = ws.request(command).await;
    assert_eq!(first["type"], "booked", "{first}");
    assert_eq!(again["booking"], first["booking"]);
    assert_eq!(bookings_of(&app, show).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_retried_with_its_key_gets_the_first_answer_even_concurrently() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["2"], false).await;
    let confirm = || {
        app.client
            .post(app.url(&format!("/bookings/{id}/confirm")))
            .header("Idempotency-Key", "confirm-1")
            .header("X-Booking-Token", &token)
            .send()
    };
    let answers = join_all((0..8).map(|_| confirm())).await;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["booking"]["status"], "CONFIRMED", "{body}");
    }
    // Without a key, a second confirm says what the booking is now.
    assert_error(&app.confirm(id, &token).await, 409, "BOOKING_NOT_PENDING");
    // The same key for another action is a different request.
    let cancel = app
        .client
        .post(app.url(&format!("/bookings/{id}/cancel")))
        .header("Idempotency-Key", "confirm-1")
        .header("X-Booking-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 422);
}

#[tokio::test]
async fn answers_older_than_a_day_are_purged() {
    let (name, url) = crate::helpers::fresh_database().await;
    let pool = boxoffice::db::connect(&url, 1).await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request, status, answer, created_at)
         VALUES ('', 'old', '{}', 201, '{}', now() - interval '25 hours'),
                ('', 'fresh', '{}', 201, '{}', now() - interval '23 hours')",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The expiry worker purges when it starts, and once a minute after.
    let app = TestApp::spawn_on(name, url, |_| {}).await;
    crate::helpers::eventually(
        Duration::from_secs(5),
        "the old answer is purged",
        || async {
            let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
                .fetch_all(&app.pool)
                .await
                .unwrap();
            keys == ["fresh"]
        },
    )
    .await;
}

#[tokio::test]
async fn a_key_past_its_day_can_be_used_again_before_it_is_purged() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request, status, answer, created_at)
         VALUES ('', 'yesterday', '{}', 201, '{}', now() - interval '25 hours')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, body) = book_with_key(&app, show, &["3"], "yesterday").await;
    assert_eq!(status, 201, "{body}");
    let (status, again) = book_with_key(&app, show, &["3"], "yesterday").await;
    assert_eq!((status, &again["booking"]), (201, &body["booking"]));
}
