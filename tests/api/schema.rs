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

/// Runs `statements` (each with its parameters) in one transaction, and asserts
/// that the database refuses to commit it, for `reason`.
async fn assert_commit_refused(app: &TestApp, statements: &[(&'static str, &[i64])], reason: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    for (sql, params) in statements {
        let query = params
            .iter()
            .fold(sqlx::query(*sql), |query, param| query.bind(*param));
        query.execute(&mut *tx).await.unwrap();
    }
    assert!(tx.commit().await.is_err(), "{reason}");
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
    assert_commit_refused(
        &app,
        &[(
            "UPDATE seats SET status = 'BOOKED' WHERE booking_id = $1",
            &[id],
        )],
        "RESERVED by a PENDING booking, not BOOKED",
    )
    .await;

    // A booking ended without freeing its seats.
    assert_commit_refused(
        &app,
        &[
            (
                "UPDATE bookings SET status = 'CANCELLED' WHERE id = $1",
                &[id],
            ),
            (
                "UPDATE booking_seats SET live = false WHERE booking_id = $1",
                &[id],
            ),
        ],
        "seats of a cancelled booking must be freed with it",
    )
    .await;

    // A seat claimed without being among the booking's seats.
    assert_commit_refused(
        &app,
        &[(
            "UPDATE seats SET status = 'RESERVED', booking_id = $1 WHERE show_id = $2 AND seat_no = '2'",
            &[id, show],
        )],
        "a claim must be recorded in booking_seats",
    )
    .await;

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
    app.confirm(id, &token).await;
    assert_eq!(version().await, 2, "sold");
    app.cancel(id, &token).await;
    assert_eq!(version().await, 3, "freed");
}
