//! Per-buyer limits: exact however fast one buyer sends, on however many instances.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

async fn live_seats_of(app: &TestApp, show: i64, user: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM seats s JOIN bookings b ON b.id = s.booking_id
         WHERE s.show_id = $1 AND b.user_id = $2",
    )
    .bind(show)
    .bind(user)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_bookings_by_one_buyer_across_two_instances_leave_exactly_the_limit() {
    let limit = |c: &mut boxoffice::Config| c.booking.buyer_limits.max_seats = Some(4);
    let a = TestApp::spawn_with(limit).await;
    let b = a.another_instance_with(limit).await;
    let show = a.create_show(200).await;
    let (a_ref, b_ref) = (&a, &b);
    let answers = join_all((1..=100u32).map(|n| async move {
        let app = if n % 2 == 0 { a_ref } else { b_ref };
        let body = json!({"seat_nos": [n.to_string()], "user_id": "scalper"});
        app.post(&format!("/shows/{show}/book"), &body).await
    }))
    .await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!(won, 4, "exactly the limit is sold");
    assert_eq!(refused.len(), 96);
    for (_, body) in refused {
        assert_eq!(body["code"], "USER_LIMIT_REACHED", "{body}");
        assert_eq!(body["limit"], "MAX_SEATS_PER_USER");
        assert_eq!(body["max"], 4);
    }
    assert_eq!(live_seats_of(&a, show, "scalper").await, 4);
    // Another buyer is not affected.
    let (status, _) = a
        .post(
            &format!("/shows/{show}/book"),
            &json!({"seat_nos": ["150"], "user_id": "fan"}),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_limits_count_holds_and_give_seats_back_when_bookings_end() {
    let app = TestApp::spawn_with(|c| {
        c.booking.buyer_limits.max_seats = Some(3);
        c.booking.buyer_limits.max_holds = Some(1);
    })
    .await;
    let show = app.create_show(10).await;
    let (hold, hold_token) = app.book_ok(show, &["1"], false).await;
    // A second hold is over MAX_HOLDS_PER_USER; a sale is not.
    let (status, body) = app.book(show, &["2"], false).await;
    assert_eq!(
        (status, body["limit"].as_str()),
        (409, Some("MAX_HOLDS_PER_USER")),
        "{body}"
    );
    assert_eq!(body["has"], 1);
    app.book_ok(show, &["3", "4"], true).await;
    // Three seats now: one more is over MAX_SEATS_PER_USER.
    let (status, body) = app.book(show, &["5"], true).await;
    assert_eq!(
        (status, body["limit"].as_str()),
        (409, Some("MAX_SEATS_PER_USER")),
        "{body}"
    );
    assert_eq!(body["has"], 3);
    // Cancelling the hold gives its seat back to the buyer's allowance.
    let (status, _) = app.cancel(hold, &hold_token).await;
    assert_eq!(status, 200);
    app.book_ok(show, &["5"], false).await;
}
