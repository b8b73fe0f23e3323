//! The schema refuses a double sale on its own, whatever the application does.

use crate::helpers::TestApp;

async fn seat_id(app: &TestApp, show: i64, seat_no: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM seats WHERE show_id = $1 AND seat_no = $2")
        .bind(show)
        .bind(seat_no)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_live_claim_on_a_seat_is_refused_by_the_database() {
    let app = TestApp::spawn().await;
    let show = app.create_show(3).await;
    app.book_ok(show, &["1"], true).await;
    let seat = seat_id(&app, show, "1").await;

    // Bypass the locking code entirely: a rogue second booking of seat 1.
    let mut tx = app.pool.begin().await.unwrap();
    let rogue: i64 = sqlx::query_scalar(
        "INSERT INTO bookings (show_id, user_id, status, token_hash) VALUES ($1, 'rogue', 'CONFIRMED', '\\x00') RETURNING id",
    )
    .bind(show)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let err =
        sqlx::query("INSERT INTO booking_seats (booking_id, seat_id, live) VALUES ($1, $2, true)")
            .bind(rogue)
            .bind(seat)
            .execute(&mut *tx)
            .await
            .expect_err("a seat must not be in two live bookings");
    assert!(
        err.to_string().contains("booking_seats_one_live_claim"),
        "{err}"
    );
}

#[tokio::test]
async fn a_seat_status_that_disagrees_with_its_booking_is_refused_at_commit() {
    let app = TestApp::spawn().await;
    let show = app.create_show(3).await;
    let (id, _) = app.book_ok(show, &["1"], false).await;

    // A held seat shown as sold.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE seats SET status = 'BOOKED' WHERE booking_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        tx.commit().await.is_err(),
        "RESERVED by a PENDING booking, not BOOKED"
    );

    // A booking ended without freeing its seats.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE bookings SET status = 'CANCELLED' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE booking_seats SET live = false WHERE booking_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        tx.commit().await.is_err(),
        "seats of a cancelled booking must be freed with it"
    );

    // A seat claimed without being among the booking's seats.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE seats SET status = 'RESERVED', booking_id = $1 WHERE show_id = $2 AND seat_no = '2'")
        .bind(id)
        .bind(show)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        tx.commit().await.is_err(),
        "a claim must be recorded in booking_seats"
    );

    assert_eq!(app.seat_status(show, "1").await, "RESERVED");
    assert_eq!(app.seat_status(show, "2").await, "AVAILABLE");
}

#[tokio::test]
async fn every_change_to_a_seat_raises_its_version() {
    let app = TestApp::spawn().await;
    let show = app.create_show(2).await;
    let version = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT version FROM seats WHERE show_id = $1 AND seat_no = '1'",
        )
        .bind(show)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(version().await, 0);
    let (id, token) = app.book_ok(show, &["1"], false).await;
    assert_eq!(version().await, 1, "held");
    app.post_with_token(&format!("/bookings/{id}/confirm"), &token)
        .await;
    assert_eq!(version().await, 2, "sold");
    app.post_with_token(&format!("/bookings/{id}/cancel"), &token)
        .await;
    assert_eq!(version().await, 3, "freed");
}
