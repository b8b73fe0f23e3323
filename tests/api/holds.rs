use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice::booking::{BookRequest, Bookings, SeatChoice};
use boxoffice::{db, expiry, shows};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::helpers::{TestApp, assert_error, eventually, fresh_database};

#[tokio::test]
async fn a_hold_expires_within_one_second_of_its_deadline() {
    let app = TestApp::spawn_with(|c| c.booking.hold_ttl = Duration::from_secs(1)).await;
    let show = app.create_show(5).await;
    let booked_at = Instant::now();
    let (id, _) = app.book_ok(show, &["1", "2"], false).await;

    let freed_after = eventually(Duration::from_secs(2), "hold expired", || async {
        app.seat_status(show, "1").await == "AVAILABLE"
    })
    .await;
    assert!(
        booked_at.elapsed() <= Duration::from_secs(2),
        "TTL 1 s + at most 1 s: took {freed_after:?}"
    );
    assert!(
        booked_at.elapsed() >= Duration::from_millis(900),
        "expired early: {:?}",
        booked_at.elapsed()
    );
    assert_eq!(app.seat_status(show, "2").await, "AVAILABLE");
    let status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "EXPIRED");
    let (_, body) = app.get(&format!("/bookings/{id}")).await;
    assert_eq!(body["booking"]["status"], "EXPIRED");
}

#[tokio::test]
async fn confirming_an_expired_hold_returns_410_and_frees_nothing_twice() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let (id, token) = app.book_ok(show, &["4"], false).await;
    // Move the deadline into the past instead of waiting two minutes.
    sqlx::query("UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_error(&app.confirm(id, &token).await, 410, "BOOKING_EXPIRED");
    assert_eq!(app.seat_status(show, "4").await, "AVAILABLE");
    let (status, _) = app.cancel(id, &token).await;
    assert_eq!(status, 410);
    app.book_ok(show, &["4"], true).await;
}

async fn bookings_service(pool: &PgPool) -> Bookings {
    let rules = boxoffice::Config::default().booking;
    Bookings::new(pool.clone(), &rules, Arc::new(Notify::new()))
}

fn hold(seats: &[&str]) -> BookRequest {
    BookRequest {
        client: None,
        admission: None,
        seats: SeatChoice::Listed(seats.iter().map(|s| s.to_string()).collect()),
        user_id: "u".into(),
        immediate_confirm: false,
    }
}

async fn create_show(pool: &PgPool, seats: i32) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let show = shows::NewShow {
        name: "Show".into(),
        start_time: chrono::Utc::now(),
        plan: boxoffice::hall::layout::uniform(seats as usize, Default::default(), "EUR"),
        window: Default::default(),
        queue: None,
    };
    shows::insert(&mut conn, &show).await.unwrap().id
}

#[tokio::test]
async fn a_seat_whose_hold_has_lapsed_can_be_booked_before_the_worker_runs() {
    // No server and no expiry worker here: only the booking transaction.
    let (_, url) = fresh_database().await;
    let pool = db::connect(&url, 4).await.unwrap();
    let bookings = bookings_service(&pool).await;
    let show = create_show(&pool, 3).await;
    let old = bookings.book(show, hold(&["1", "2"]), None).await.unwrap();
    sqlx::query("UPDATE bookings SET expires_at = now() - interval '1 ms' WHERE id = $1")
        .bind(old.id)
        .execute(&pool)
        .await
        .unwrap();

    let new = bookings
        .book(show, hold(&["2", "3"]), None)
        .await
        .expect("the lapsed hold does not block seat 2");
    assert_eq!(new.seat_nos, ["2", "3"]);
    let old_status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
        .bind(old.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(old_status, "EXPIRED", "the lapsed hold is ended as a whole");
    let seat1: String =
        sqlx::query_scalar("SELECT status FROM seats WHERE show_id = $1 AND seat_no = '1'")
            .bind(show)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(seat1, "AVAILABLE", "its other seat is freed too");
}

#[tokio::test]
async fn concurrent_sweeps_expire_each_hold_exactly_once() {
    let (_, url) = fresh_database().await;
    let pool = db::connect(&url, 8).await.unwrap();
    let bookings = bookings_service(&pool).await;
    let show = create_show(&pool, 400).await;
    for n in 0..200 {
        let (a, b) = ((2 * n + 1).to_string(), (2 * n + 2).to_string());
        bookings.book(show, hold(&[&a, &b]), None).await.unwrap();
    }
    sqlx::query("UPDATE bookings SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();

    // Two "instances" sweeping in small batches at the same time.
    let sweeper = |pool: PgPool| async move {
        let mut total = 0;
        loop {
            match expiry::sweep(&pool, 7).await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(sweeper(pool.clone())),
        tokio::spawn(sweeper(pool.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 200);
    let (expired, free): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM bookings WHERE status = 'EXPIRED'),
                (SELECT count(*) FROM seats WHERE status = 'AVAILABLE')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((expired, free), (200, 400));
}
