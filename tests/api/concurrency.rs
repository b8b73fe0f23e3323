use std::collections::HashMap;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn ten_concurrent_bookings_of_the_same_two_seats_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    let replies = join_all((0..10).map(|_| app.book(show, &["1", "2"], true))).await;
    let created = replies.iter().filter(|(s, _)| *s == 201).count();
    let conflicts = replies
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "SEATS_UNAVAILABLE")
        .count();
    assert_eq!((created, conflicts), (1, 9), "{replies:?}");
}

/// Hundreds of bookings over overlapping seat sets: afterwards no seat may be in two
/// live bookings, and every booking that got a 201 must hold all its seats.
#[tokio::test]
async fn overlapping_concurrent_bookings_never_sell_a_seat_twice() {
    let app = TestApp::spawn_with(|c| c.database.pool_size = 16).await;
    let show = app.create_show(60).await;
    let requests: Vec<Vec<String>> = (0..300u32)
        .map(|i| {
            // A pseudo-random set of 1 to 4 seats out of 60, so sets overlap heavily.
            let n = 1 + (i * 7) % 4;
            (0..n)
                .map(|k| (1 + (i * 13 + k * 17) % 60).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .collect();
    let (app, path) = (&app, format!("/shows/{show}/book"));
    let replies = join_all(requests.iter().map(|seats| {
        let body = json!({"seat_nos": seats, "user_id": "load", "immediate_confirm": seats.len() % 2 == 0});
        let path = &path;
        async move { app.post(path, &body).await }
    }))
    .await;

    let mut sold: HashMap<String, i64> = HashMap::new();
    for ((status, body), seats) in replies.iter().zip(&requests) {
        match status {
            201 => {
                let id = body["booking"]["id"].as_i64().unwrap();
                for seat in seats {
                    let previous = sold.insert(seat.clone(), id);
                    assert!(
                        previous.is_none(),
                        "seat {seat} acknowledged to bookings {previous:?} and {id}"
                    );
                }
            }
            409 => assert_eq!(body["code"], "SEATS_UNAVAILABLE", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!sold.is_empty());

    // The database agrees with every acknowledgement...
    let rows: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("SELECT seat_no, booking_id, status FROM seats WHERE show_id = $1")
            .bind(show)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (seat_no, booking_id, status) in rows {
        assert_eq!(booking_id, sold.get(&seat_no).copied(), "seat {seat_no}");
        assert_eq!(
            status == "AVAILABLE",
            booking_id.is_none(),
            "seat {seat_no} is {status}"
        );
    }
    // ...and no seat is claimed by two live bookings.
    let doubly: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT bs.seat_id FROM booking_seats bs JOIN bookings b ON b.id = bs.booking_id
                               WHERE b.status IN ('PENDING', 'CONFIRMED') GROUP BY bs.seat_id HAVING count(*) > 1) d",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(doubly, 0);
}

/// The old service fell over past ~20 waiting requests; these queue for the pool.
#[tokio::test]
async fn five_hundred_concurrent_requests_are_each_answered_correctly() {
    let app = TestApp::spawn_with(|c| c.database.pool_size = 5).await;
    let show = app.create_show(250).await;
    // 250 bookings of distinct seats and 250 reads, all at once.
    let app = &app;
    let seats_path = format!("/shows/{show}/seats");
    let bookings = join_all(
        (1..=250).map(|n| async move { app.book(show, &[n.to_string().as_str()], true).await }),
    );
    let reads = join_all((0..250).map(|_| app.get(&seats_path)));
    let (bookings, reads) = tokio::join!(bookings, reads);
    for (status, body) in &bookings {
        assert_eq!(*status, 201, "{body}");
    }
    for (status, body) in &reads {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["count"], 250);
    }
    assert!(app.all_seats_are(show, "BOOKED").await);
}
