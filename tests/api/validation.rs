use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

fn assert_invalid(answer: &(u16, Value), mentions: &str) {
    assert_error(answer, 400, "VALIDATION_FAILED");
    let msg = answer.1["error"].as_str().unwrap();
    assert!(
        msg.contains(mentions),
        "{msg:?} should mention {mentions:?}"
    );
}

#[tokio::test]
async fn malformed_booking_requests_get_400_with_a_reason() {
    let app = TestApp::spawn().await;
    let show = app.create_show(20).await;
    let path = format!("/shows/{show}/book");

    assert_invalid(
        &app.post_raw(&path, "{\"seat_nos\": [\"1\"").await,
        "invalid JSON",
    );
    assert_invalid(&app.post_raw(&path, "").await, "JSON object");
    assert_invalid(&app.post(&path, &json!({"user_id": "u"})).await, "seat_nos");
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": ["1"]})).await,
        "user_id",
    );
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": "1", "user_id": "u"}))
            .await,
        "seat_nos",
    );
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": [true], "user_id": "u"}))
            .await,
        "string or an integer",
    );
    assert_invalid(
        &app.post(
            &path,
            &json!({"seat_nos": ["1"], "user_id": "u", "immediate_confirm": "yes"}),
        )
        .await,
        "boolean",
    );
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": [], "user_id": "u"}))
            .await,
        "at least one seat",
    );
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": ["1", "2", "1"], "user_id": "u"}))
            .await,
        "more than once: 1",
    );
    let eleven: Vec<String> = (1..=11).map(|n| n.to_string()).collect();
    assert_invalid(
        &app.post(&path, &json!({"seat_nos": eleven, "user_id": "u"}))
            .await,
        "at most 10 seats",
    );
    assert_invalid(
        &app.post(
            &path,
            &json!({"seat_nos": ["x".repeat(33)], "user_id": "u"}),
        )
        .await,
        "1 to 32",
    );
    assert_invalid(
        &app.post(
            &path,
            &json!({"seat_nos": ["1"], "user_id": "u".repeat(101)}),
        )
        .await,
        "user_id",
    );

    assert!(
        app.all_seats_are(show, "AVAILABLE").await,
        "nothing was booked"
    );
}

#[tokio::test]
async fn ids_that_are_not_positive_integers_get_400() {
    let app = TestApp::spawn().await;
    for path in [
        "/shows/abc/seats",
        "/shows/-1/seats",
        "/shows/0",
        "/bookings/1.5",
        "/bookings/99999999999999999999",
    ] {
        assert_invalid(&app.get(path).await, "positive integers");
    }
    assert_invalid(
        &app.post(
            "/shows/abc/book",
            &json!({"seat_nos": ["1"], "user_id": "u"}),
        )
        .await,
        "positive integers",
    );
}

#[tokio::test]
async fn bad_show_definitions_get_400() {
    let app = TestApp::spawn().await;
    let app = &app;
    let create = |body: Value| async move { app.admin_create_show(&body).await };
    let ok = json!({"name": "Show", "start_time": "2030-01-01T20:00:00Z", "total_seats": 5});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    assert_invalid(
        &create(with("start_time", json!("next friday"))).await,
        "start_time",
    );
    assert_invalid(
        &create(with("start_time", json!("2030-02-30T20:00:00Z"))).await,
        "start_time",
    );
    assert_invalid(&create(with("total_seats", json!(0))).await, "total_seats");
    assert_invalid(
        &create(with("total_seats", json!(100_001))).await,
        "total_seats",
    );
    assert_invalid(
        &create(with("total_seats", json!(1e20))).await,
        "total_seats",
    );
    assert_invalid(
        &create(with("total_seats", json!("lots"))).await,
        "total_seats",
    );
    assert_invalid(&create(with("name", json!("  "))).await, "name");
    assert_invalid(&create(with("name", json!("n".repeat(201)))).await, "name");
    assert_invalid(&create(json!({"name": "Show"})).await, "missing field");
    // The old service's bare local date-time is still accepted (as UTC).
    let (status, body) = create(with("start_time", json!("2030-01-01 20:00:00"))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["show"]["start_time"], "2030-01-01T20:00:00Z");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let huge = format!(
        "{{\"seat_nos\": [\"1\"], \"user_id\": \"{}\"}}",
        "u".repeat(100_000)
    );
    let answer = app.post_raw(&format!("/shows/{show}/book"), huge).await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_confirm_with_a_malformed_body_gets_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let show = app.create_show(3).await;
    let (id, _) = app.book_ok(show, &["1"], false).await;
    assert_invalid(
        &app.post_raw(&format!("/bookings/{id}/confirm"), "token=abc")
            .await,
        "invalid JSON",
    );
    assert_invalid(
        &app.post(&format!("/bookings/{id}/confirm"), &json!({"token": 42}))
            .await,
        "token",
    );
    assert_eq!(app.seat_status(show, "1").await, "RESERVED");
}
