//! Real halls: layouts, prices and best-available seats.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::ws_client::WsClient;

/// Two sections, two categories, an aisle, an accessible row and a blocked seat.
fn layout() -> Value {
    json!({
        "stage": {"label": "Stage"},
        "categories": [
            {"key": "A", "name": "Premium", "price": "89.00", "currency": "EUR"},
            {"key": "B", "name": "Standard", "price": "45.50", "currency": "EUR", "color": "#1d7a43"}
        ],
        "sections": [
            {"key": "stalls", "name": "Stalls", "category": "A", "rows": [
                {"label": "A", "seats": [1, 2, 3, null, 4, 5, 6]},
                {"label": "B", "seats": 8, "category": "B"},
                {"label": "W", "seats": [1, {"number": 2, "blocked": true}, 3], "accessible": true}
            ]},
            {"key": "circle", "rows": [
                {"label": "A", "seats": 10, "category": "B"}
            ]}
        ]
    })
}

async fn create_hall(app: &TestApp, layout: Value) -> (u16, Value) {
    let body = json!({"name": "Hall", "start_time": "2030-01-01T20:00:00Z", "layout": layout});
    app.admin_create_show(&body).await
}

async fn hall_show(app: &TestApp) -> i64 {
    let (status, body) = create_hall(app, layout()).await;
    assert_eq!(status, 201, "{body}");
    body["show"]["id"].as_i64().unwrap()
}

async fn best(app: &TestApp, show: i64, ask: Value) -> (u16, Value) {
    let body = json!({"user_id": "u", "best_available": ask});
    app.post(&format!("/shows/{show}/book"), &body).await
}

#[tokio::test]
async fn a_hall_is_created_in_one_request_and_shown_with_its_places_and_prices() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;

    let (status, body) = app.get(&format!("/shows/{show}")).await;
    assert_eq!(status, 200);
    let s = &body["show"];
    assert_eq!(s["total_seats"], 27);
    assert_eq!(s["available_seats"], 26, "the blocked seat is not for sale");
    assert_eq!(s["currency"], "EUR");
    assert_eq!(s["stage"]["label"], "Stage");
    let categories: Vec<(&str, &str, i64)> = s["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap(),
                c["price"].as_str().unwrap(),
                c["available_seats"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(categories, [("A", "89.00", 8), ("B", "45.50", 18)]);
    assert_eq!(s["categories"][1]["color"], "#1d7a43");
    let sections: Vec<&str> = s["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["Stalls", "circle"]);
    assert_eq!(s["sections"][0]["rows"].as_array().unwrap().len(), 3);

    let (_, body) = app.get(&format!("/shows/{show}/seats")).await;
    let seats = body["seats"].as_array().unwrap();
    let a4 = seats.iter().find(|s| s["seat_no"] == "stalls-A-4").unwrap();
    let a3 = seats.iter().find(|s| s["seat_no"] == "stalls-A-3").unwrap();
    assert_eq!(
        (&a4["section"], &a4["row"], &a4["number"], &a4["category"]),
        (&json!("stalls"), &json!("A"), &json!("4"), &json!("A"))
    );
    assert_eq!(
        a4["x"].as_i64().unwrap() - a3["x"].as_i64().unwrap(),
        2,
        "the aisle is an empty place"
    );
    let w2 = seats.iter().find(|s| s["seat_no"] == "stalls-W-2").unwrap();
    assert_eq!(
        (&w2["status"], &w2["accessible"]),
        (&json!("BLOCKED"), &json!(true))
    );
    let circle = seats.iter().find(|s| s["seat_no"] == "circle-A-1").unwrap();
    assert!(
        circle["y"].as_i64().unwrap() > w2["y"].as_i64().unwrap() + 1,
        "sections are stacked with a gap"
    );
}

#[tokio::test]
async fn a_booking_gives_each_seats_price_and_the_total() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    let body = json!({"user_id": "u", "seat_nos": ["stalls-A-1", "stalls-B-1", "circle-A-1"]});
    let (status, body) = app.post(&format!("/shows/{show}/book"), &body).await;
    assert_eq!(status, 201, "{body}");
    let b = &body["booking"];
    assert_eq!(
        (&b["total"], &b["currency"]),
        (&json!("180.00"), &json!("EUR"))
    );
    let prices: Vec<&str> = b["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["price"].as_str().unwrap())
        .collect();
    assert_eq!(prices, ["89.00", "45.50", "45.50"]);

    let id = b["id"].as_i64().unwrap();
    let (_, body) = app.get(&format!("/bookings/{id}")).await;
    assert_eq!(body["booking"]["total"], "180.00");
    assert_eq!(body["booking"]["seats"][0]["category"], "A");
}

#[tokio::test]
async fn a_blocked_seat_cannot_be_booked() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    let body = json!({"user_id": "u", "seat_nos": ["stalls-W-2"]});
    let (status, body) = app.post(&format!("/shows/{show}/book"), &body).await;
    assert_eq!((status, &body["code"]), (409, &json!("SEATS_UNAVAILABLE")));
}

#[tokio::test]
async fn a_bad_layout_is_refused_with_the_path_of_what_is_wrong() {
    let app = TestApp::spawn_with(|c| c.booking.max_seats_per_show = 30).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"categories": [{"key": "A", "name": "A", "price": "1", "currency": "EUR"}],
                   "sections": [{"key": "s", "rows": [{"label": "A", "seats": 2, "category": "Z"}]}]}),
            "layout.sections[0].rows[0]",
            "unknown category",
        ),
        (
            json!({"categories": [{"key": "A", "name": "A", "price": "1", "currency": "EUR"}],
                   "sections": [{"key": "s", "rows": [{"label": "A", "seats": 2}]},
                                {"key": "t", "rows": [{"label": "A", "seats": 1}, {"label": "B", "seats": [1, 2, 2]}]}]}),
            "layout.sections[1].rows[1].seats[2]",
            "listed twice",
        ),
        (
            json!({"categories": [{"key": "A", "name": "A", "price": "1", "currency": "EUR"}],
                   "sections": [{"key": "s", "rows": []}]}),
            "layout.sections[0].rows",
            "at least one row",
        ),
        (
            json!({"categories": [{"key": "A", "name": "A", "price": "1", "currency": "EUR"}],
                   "sections": [{"key": "s", "rows": [{"label": "A", "seats": 20}, {"label": "B", "seats": 20}]}]}),
            "layout.sections",
            "MAX_SEATS_PER_SHOW",
        ),
        (
            json!({"categories": [{"key": "A", "name": "A", "price": "1,50", "currency": "EUR"}],
                   "sections": [{"key": "s", "rows": [{"label": "A", "seats": 2}]}]}),
            "layout.categories[0].price",
            "not a price",
        ),
    ];
    for (layout, path, message) in cases {
        let (status, body) = create_hall(&app, layout).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "VALIDATION_FAILED");
        assert_eq!(body["path"], path, "{body}");
        assert!(body["error"].as_str().unwrap().contains(message), "{body}");
    }
    let (_, body) = app.get("/shows").await;
    assert_eq!(body["count"], 0, "nothing was created");
}

#[tokio::test]
async fn the_best_seats_are_adjacent_front_and_centre_in_the_asked_category() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    let (status, body) = best(&app, show, json!({"count": 4, "category": "B"})).await;
    assert_eq!(status, 201, "{body}");
    let b = &body["booking"];
    let seats: Vec<&str> = b["seat_nos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // Row B of the stalls (8 seats) is the front row of category B; its centre
    // four leave two free on each side.
    assert_eq!(
        seats,
        ["stalls-B-3", "stalls-B-4", "stalls-B-5", "stalls-B-6"]
    );
    assert_eq!(b["total"], "182.00");

    // Row A of the stalls has 3 + 3 around an aisle: no 4 together.
    let (status, body) = best(&app, show, json!({"count": 4, "category": "A"})).await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("NO_ADJACENT_SEATS")),
        "{body}"
    );
    let (status, body) = best(
        &app,
        show,
        json!({"count": 4, "category": "A", "allow_split": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["booking"]["seats"].as_array().unwrap().len(), 4);

    // Accessible seats only when asked, and then only those.
    let (status, body) = best(&app, show, json!({"count": 2, "accessible": true})).await;
    assert_eq!(
        status, 409,
        "W-1 and W-3 are split by a blocked seat: {body}"
    );
    let (status, body) = best(&app, show, json!({"count": 1, "accessible": true})).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["booking"]["seat_nos"][0]
            .as_str()
            .unwrap()
            .starts_with("stalls-W-")
    );
    let (status, body) = best(&app, show, json!({"count": 1, "category": "Z"})).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("VALIDATION_FAILED")),
        "{body}"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_pairs_fill_a_20_by_20_hall_without_overlap() {
    let app = TestApp::spawn().await;
    let rows: Vec<Value> = (0..20)
        .map(|r| json!({"label": boxoffice::hall::layout::row_label(r), "seats": 20}))
        .collect();
    let (status, body) = create_hall(
        &app,
        json!({"categories": [{"key": "A", "name": "All", "price": "10.00", "currency": "EUR"}],
               "sections": [{"key": "main", "rows": rows}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let show = body["show"]["id"].as_i64().unwrap();
    let (_, body) = app.get(&format!("/shows/{show}/seats")).await;
    let place: std::collections::HashMap<String, (i64, i64)> = body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let at = (s["y"].as_i64().unwrap(), s["x"].as_i64().unwrap());
            (s["seat_no"].as_str().unwrap().to_string(), at)
        })
        .collect();

    let requests = (0..200).map(|i| {
        let app = &app;
        async move {
            let body = json!({"user_id": format!("u{i}"), "best_available": {"count": 2}});
            app.post(&format!("/shows/{show}/book"), &body).await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut sold = HashSet::new();
    for (status, body) in answers {
        assert_eq!(status, 201, "{body}");
        let seats: Vec<(i64, i64)> = body["booking"]["seat_nos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| place[s.as_str().unwrap()])
            .collect();
        assert_eq!(seats.len(), 2);
        assert_eq!(seats[0].0, seats[1].0, "one row: {seats:?}");
        assert_eq!(seats[1].1 - seats[0].1, 1, "side by side: {seats:?}");
        for s in seats {
            assert!(sold.insert(s), "seat {s:?} sold twice");
        }
    }
    let (_, body) = app.get(&format!("/shows/{show}")).await;
    assert_eq!(body["show"]["available_seats"], 0);
}

#[tokio::test]
async fn a_best_available_pick_goes_around_a_seat_sold_while_it_was_choosing() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    // Seats 5 and 6 are the best pair. A rival transaction holds seat 5's row and
    // sells it while the pick waits for that row.
    let mut rival = app.lock_seat(show, "5").await;
    let asking = best(&app, show, json!({"count": 2}));
    let rival_sells = async {
        app.until_a_transaction_waits_for_a_lock().await;
        sqlx::query(
            "WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
                        VALUES ($1, 'rival', 'CONFIRMED', '\\x00') RETURNING id),
                  c AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                        SELECT b.id, s.id, true FROM b, seats s WHERE s.show_id = $1 AND s.seat_no = '5')
             UPDATE seats SET status = 'BOOKED', booking_id = (SELECT id FROM b), version = version + 1
             WHERE show_id = $1 AND seat_no = '5'",
        )
        .bind(show)
        .execute(&mut *rival)
        .await
        .unwrap();
        rival.commit().await.unwrap();
    };
    let ((status, body), ()) = tokio::join!(asking, rival_sells);
    assert_eq!(status, 201, "{body}");
    let seats: Vec<i64> = body["booking"]["seat_nos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(!seats.contains(&5), "{seats:?}");
    assert_eq!(seats[1] - seats[0], 1, "still a pair: {seats:?}");
    assert_eq!(app.seat_status(show, "5").await, "BOOKED");
}

#[tokio::test]
async fn a_websocket_book_command_can_ask_for_the_best_seats() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    let mut client = WsClient::connect(&app, show).await;
    client
        .send_json(json!({"type": "book", "request_id": "r1", "user_id": "u",
                          "best_available": {"count": 2, "category": "A"}}))
        .await;
    let reply = client
        .until(std::time::Duration::from_secs(5), |f| f["type"] == "booked")
        .await;
    assert_eq!(reply["booking"]["total"], "178.00");
    assert_eq!(reply["booking"]["seats"][0]["row"], "A");
}

#[tokio::test]
async fn old_total_seats_shows_get_rows_and_an_optional_price() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Old", "start_time": "2030-01-01T20:00:00Z", "total_seats": 240,
                      "price": "12.50", "currency": "GBP"});
    let (status, body) = app.admin_create_show(&body).await;
    assert_eq!(status, 201, "{body}");
    let show = body["show"]["id"].as_i64().unwrap();
    let (_, body) = app.get(&format!("/shows/{show}/seats")).await;
    let seats = body["seats"].as_array().unwrap();
    assert_eq!(seats[0]["seat_no"], "1");
    assert_eq!(seats[239]["seat_no"], "240");
    assert_eq!(
        (&seats[22]["row"], &seats[22]["number"]),
        (&json!("B"), &json!("1"))
    );
    let (_, body) = app.get(&format!("/shows/{show}")).await;
    assert_eq!(body["show"]["categories"][0]["price"], "12.50");
    assert_eq!(body["show"]["currency"], "GBP");
}

#[tokio::test]
async fn the_layout_is_served_once_and_cached_by_its_etag() {
    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    let url = app.url(&format!("/shows/{show}/layout"));
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let layout: Value = resp.json().await.unwrap();
    assert_eq!(layout["seats"].as_array().unwrap().len(), 27);
    assert_eq!(
        layout["seats"][0],
        json!(["stalls-A-1", "stalls", "A", "1", "A", 1, 0, false])
    );
    assert_eq!(layout["seat_fields"][0], "seat_no");
    assert!(
        layout["categories"][0].get("available_seats").is_none(),
        "nothing live in it"
    );

    let again = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let (status, body) = app.get("/shows/987654/layout").await;
    assert_eq!((status, &body["code"]), (404, &json!("SHOW_NOT_FOUND")));
}

#[tokio::test]
async fn a_client_with_the_layout_can_ask_the_socket_for_state_only() {
    use futures_util::StreamExt;
    use tokio_tungstenite::connect_async;

    let app = TestApp::spawn().await;
    let show = hall_show(&app).await;
    app.post(
        &format!("/shows/{show}/book"),
        &json!({"user_id": "u", "seat_nos": ["stalls-B-2"], "immediate_confirm": false}),
    )
    .await;
    let (_, layout) = app.get(&format!("/shows/{show}/layout")).await;
    let url = format!("ws://{}/shows/{show}/ws?snapshot=state", app.addr);
    let (mut ws, _) = connect_async(url).await.unwrap();
    let frame = ws.next().await.unwrap().unwrap();
    let text = frame.to_text().unwrap();
    let state: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        (
            &state["type"],
            &state["part"],
            &state["parts"],
            &state["offset"]
        ),
        (&json!("state"), &json!(1), &json!(1), &json!(0))
    );
    let status = state["status"].as_str().unwrap();
    assert_eq!(status.len(), 27);
    let at = |seat_no: &str| {
        layout["seats"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s[0] == seat_no)
            .unwrap()
    };
    assert_eq!(&status[at("stalls-B-2")..=at("stalls-B-2")], "R");
    assert_eq!(
        &status[at("stalls-W-2")..=at("stalls-W-2")],
        "X",
        "the blocked seat"
    );
    assert_eq!(state["versions"][at("stalls-B-2")], 1);
    assert!(
        text.len() < 400,
        "compact: {} bytes for 27 seats",
        text.len()
    );

    // Changes come as for everyone.
    app.book_ok(show, &["circle-A-5"], true).await;
    let change: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(change["type"], "seats_changed");
    assert_eq!(change["seats"][0]["seat_no"], "circle-A-5");

    let bad = connect_async(format!(
        "ws://{}/shows/{show}/ws?snapshot=everything",
        app.addr
    ))
    .await;
    assert!(
        bad.is_err(),
        "an unknown view is refused before the upgrade"
    );
}
