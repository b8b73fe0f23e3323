use serde_json::json;

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn booking_returns_the_old_shape_plus_ids_and_a_token() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    let (status, body) = app
        .post(
            &format!("/shows/{show}/book"),
            &json!({"seat_nos": ["3", "1"], "user_id": "alice"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "Booking created successfully");
    let b = &body["booking"];
    assert_eq!(
        b["status"], "CONFIRMED",
        "immediate_confirm defaults to true"
    );
    assert_eq!(b["seat_nos"], json!(["1", "3"]));
    assert_eq!(b["show_id"], show);
    assert_eq!(b["user_id"], "alice");
    assert!(b["expires_at"].is_null());
    assert!(b["created_at"].is_string());
    assert_eq!(b["token"].as_str().unwrap().len(), 64);
    assert_eq!(app.seat_status(show, "1").await, "BOOKED");
    assert_eq!(app.seat_status(show, "2").await, "AVAILABLE");
}

#[tokio::test]
async fn a_booking_can_be_read_back_without_its_token_but_not_who_made_it() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["2", "4"], false).await;
    let (status, body) = app.get(&format!("/bookings/{id}")).await;
    assert_eq!(status, 200);
    let b = &body["booking"];
    assert_eq!(b["id"], id);
    assert_eq!(b["show_id"], show);
    assert_eq!(b["show_name"], "Test Show");
    assert!(
        b.get("user_id").is_none(),
        "the buyer is not shown to strangers: {b}"
    );
    assert_eq!(b["status"], "PENDING");
    assert!(b["expires_at"].is_string());
    let seats: Vec<(&str, &str)> = b["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["seat_no"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seats, [("2", "RESERVED"), ("4", "RESERVED")]);
    assert_eq!(
        (
            &b["seats"][0]["row"],
            &b["seats"][0]["price"],
            &b["total"],
            &b["currency"]
        ),
        (&json!("A"), &json!("0.00"), &json!("0.00"), &json!("EUR")),
        "a total_seats show has one free category, and its seats rows"
    );
    assert!(b.get("token").is_none(), "the token is never shown again");

    // The token's holder and the admin see who booked it.
    for (header, value) in [
        ("X-Booking-Token", token.clone()),
        ("Authorization", format!("Bearer {token}")),
        (
            "Authorization",
            format!("Bearer {}", crate::helpers::ADMIN_TOKEN),
        ),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/bookings/{id}")))
            .header(header, value)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["booking"]["user_id"], "tester", "{header}");
    }
    let response = app
        .client
        .get(app.url(&format!("/bookings/{id}")))
        .header("X-Booking-Token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["booking"].get("user_id").is_none(),
        "a wrong token shows nothing more"
    );
}

#[tokio::test]
async fn booking_an_already_booked_seat_returns_409_naming_it() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    app.book_ok(show, &["2"], true).await;
    let (status, body) = app.book(show, &["1", "2"], true).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "SEATS_UNAVAILABLE");
    assert_eq!(body["seat_nos"], json!(["2"]));
    assert_eq!(
        app.seat_status(show, "1").await,
        "AVAILABLE",
        "all or nothing"
    );
}

#[tokio::test]
async fn booking_a_seat_that_does_not_exist_returns_409_seats_not_found() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (status, body) = app.book(show, &["1", "6", "A1"], true).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "SEATS_NOT_FOUND");
    assert_eq!(body["seat_nos"], json!(["6", "A1"]));
    assert_eq!(app.seat_status(show, "1").await, "AVAILABLE");
}

#[tokio::test]
async fn booking_for_an_unknown_show_returns_404() {
    let app = TestApp::spawn().await;
    assert_error(&app.book(4242, &["1"], true).await, 404, "SHOW_NOT_FOUND");
    assert_error(&app.get("/bookings/4242").await, 404, "BOOKING_NOT_FOUND");
    assert_error(&app.confirm(4242, "x").await, 404, "BOOKING_NOT_FOUND");
}

#[tokio::test]
async fn a_hold_can_be_confirmed_with_its_token() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["1", "2"], false).await;
    assert_eq!(app.seat_status(show, "1").await, "RESERVED");

    let (status, body) = app.confirm(id, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["booking"]["status"], "CONFIRMED");
    assert!(
        body["booking"]["expires_at"].is_null(),
        "a sale does not expire"
    );
    assert_eq!(app.seat_status(show, "1").await, "BOOKED");
    assert_eq!(app.seat_status(show, "2").await, "BOOKED");

    assert_error(&app.confirm(id, &token).await, 409, "BOOKING_NOT_PENDING");
}

#[tokio::test]
async fn the_token_may_also_come_in_the_body() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["1"], false).await;
    let (status, body) = app
        .post(&format!("/bookings/{id}/confirm"), &json!({"token": token}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["booking"]["status"], "CONFIRMED");
}

#[tokio::test]
async fn cancel_needs_the_right_token_and_frees_the_seats() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["1", "2"], true).await;
    let path = format!("/bookings/{id}/cancel");

    assert_error(&app.post_raw(&path, "").await, 401, "UNAUTHORIZED");
    assert_error(&app.cancel(id, "not-the-token").await, 401, "UNAUTHORIZED");
    assert_eq!(
        app.seat_status(show, "1").await,
        "BOOKED",
        "a refused cancel changes nothing"
    );

    let (status, body) = app.cancel(id, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["booking"]["status"], "CANCELLED");
    assert_eq!(app.seat_status(show, "1").await, "AVAILABLE");
    assert_eq!(app.seat_status(show, "2").await, "AVAILABLE");

    assert_error(&app.cancel(id, &token).await, 409, "BOOKING_NOT_PENDING");
    // The freed seats can be sold again.
    app.book_ok(show, &["1", "2"], true).await;
}

#[tokio::test]
async fn a_cancelled_hold_cannot_be_confirmed() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["3"], false).await;
    let (status, _) = app.cancel(id, &token).await;
    assert_eq!(status, 200);
    let refused = app.confirm(id, &token).await;
    assert_error(&refused, 409, "BOOKING_NOT_PENDING");
    assert_eq!(refused.1["status"], "CANCELLED");
}
