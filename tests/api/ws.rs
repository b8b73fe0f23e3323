use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::TestApp;
use crate::ws_client::{WsClient, db_map, ws_url};

const SOON: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_snapshot_matches_the_rest_seat_map() {
    let app = TestApp::spawn().await;
    let show = app.create_show(12).await;
    app.book_ok(show, &["3"], true).await;
    app.book_ok(show, &["10", "11"], false).await;

    let client = WsClient::connect(&app, show).await;
    let (_, rest) = app.get(&format!("/shows/{show}/seats")).await;
    let rest_map: crate::ws_client::SeatMap = rest["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let (no, status) = (
                s["seat_no"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            );
            (
                no.to_string(),
                (status.to_string(), s["version"].as_i64().unwrap()),
            )
        })
        .collect();
    assert_eq!(rest_map.len(), 12);
    assert_eq!(client.map, rest_map);

    // The snapshot also carries the counts a kiosk needs.
    let (mut raw, _) = connect_async(ws_url(&app, show)).await.unwrap();
    let first = futures_util::StreamExt::next(&mut raw)
        .await
        .unwrap()
        .unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(snapshot["show_id"], show);
    assert_eq!(
        snapshot["counts"],
        json!({"AVAILABLE": 9, "RESERVED": 2, "BOOKED": 1})
    );
}

#[tokio::test]
async fn a_booking_over_the_socket_reaches_every_other_session_with_new_versions() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    let mut booker = WsClient::connect(&app, show).await;
    let mut watchers = Vec::new();
    for _ in 0..5 {
        watchers.push(WsClient::connect(&app, show).await);
    }

    let reply = booker.book(&["7", "8"], false).await;
    assert_eq!(reply["type"], "booked", "{reply}");
    assert_eq!(reply["booking"]["status"], "PENDING");
    assert_eq!(reply["booking"]["seat_nos"], json!(["7", "8"]));
    assert_eq!(reply["booking"]["token"].as_str().unwrap().len(), 64);

    for watcher in &mut watchers {
        let change = watcher.until(SOON, |f| f["type"] == "seats_changed").await;
        assert_eq!(change["show_id"], show);
        assert_eq!(
            change["seats"],
            json!([{"seat_no": "7", "status": "RESERVED", "version": 1}, {"seat_no": "8", "status": "RESERVED", "version": 1}])
        );
    }

    // Confirm and cancel over the socket, with the token from the reply.
    let id = reply["booking"]["id"].as_i64().unwrap();
    let token = reply["booking"]["token"].as_str().unwrap();
    let confirmed = booker
        .request(json!({"type": "confirm", "booking_id": id, "token": token}))
        .await;
    assert_eq!(confirmed["type"], "confirmed", "{confirmed}");
    assert_eq!(confirmed["booking"]["status"], "CONFIRMED");
    let cancelled = booker
        .request(json!({"type": "cancel", "booking_id": id, "token": token}))
        .await;
    assert_eq!(cancelled["type"], "cancelled", "{cancelled}");

    let expected = db_map(&app, show).await;
    assert_eq!(expected["7"], ("AVAILABLE".to_string(), 3));
    for watcher in &mut watchers {
        watcher.settle_to(&expected, SOON).await;
    }
    booker.settle_to(&expected, SOON).await;
}

#[tokio::test]
async fn socket_errors_use_the_rest_codes() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let mut a = WsClient::connect(&app, show).await;
    a.book(&["1"], true).await;
    let taken = a.book(&["1", "2"], true).await;
    assert_eq!(taken["type"], "error");
    assert_eq!(taken["code"], "SEATS_UNAVAILABLE");
    assert_eq!(taken["seat_nos"], json!(["1"]));
    let missing = a.book(&["9"], true).await;
    assert_eq!(
        (missing["code"].as_str(), &missing["seat_nos"]),
        (Some("SEATS_NOT_FOUND"), &json!(["9"]))
    );
    let wrong = a
        .request(json!({"type": "confirm", "booking_id": 1, "token": "nope"}))
        .await;
    assert_eq!(wrong["code"], "UNAUTHORIZED");
    let unknown = a
        .request(json!({"type": "cancel", "booking_id": 999, "token": "t"}))
        .await;
    assert_eq!(unknown["code"], "BOOKING_NOT_FOUND");
    let pong = a.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");
}

#[tokio::test]
async fn bad_frames_get_typed_errors_and_the_session_lives_on() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let mut c = WsClient::connect(&app, show).await;
    let is_error = |f: &serde_json::Value| f["type"] == "error";

    for bad in [
        "{not json",
        "[1, 2, 3]",
        r#"{"type": "dance", "request_id": "x1"}"#,
        r#"{"type": "book", "request_id": "x2", "seat_nos": "1", "user_id": "u"}"#,
        r#"{"type": "book", "request_id": "x3", "seat_nos": [], "user_id": "u"}"#,
        r#"{"type": "book", "request_id": "x4", "seat_nos": ["1", "1"], "user_id": "u"}"#,
        r#"{"type": "confirm", "request_id": "x5", "booking_id": "one"}"#,
    ] {
        c.send_raw(Message::text(bad)).await;
        let reply = c.until(SOON, is_error).await;
        assert_eq!(reply["code"], "VALIDATION_FAILED", "{bad} -> {reply}");
    }
    let reply = c.request(json!({"type": "dance"})).await;
    assert!(
        reply["error"].as_str().unwrap().contains("unknown variant"),
        "{reply}"
    );
    c.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(c.until(SOON, is_error).await["code"], "VALIDATION_FAILED");

    // Still alive, still booking.
    let booked = c.book(&["2"], true).await;
    assert_eq!(booked["type"], "booked", "{booked}");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_session_with_1009() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    let mut c = WsClient::connect(&app, show).await;
    c.send_raw(Message::text(format!(
        "{{\"type\": \"ping\", \"pad\": \"{}\"}}",
        "x".repeat(70_000)
    )))
    .await;
    let frame = c.closed(SOON).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
}

#[tokio::test]
async fn ten_sockets_booking_the_same_seats_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(WsClient::connect(&app, show).await);
    }
    let replies = join_all(clients.iter_mut().map(|c| c.book(&["1", "2"], true))).await;
    let booked = replies.iter().filter(|r| r["type"] == "booked").count();
    let refused = replies
        .iter()
        .filter(|r| r["code"] == "SEATS_UNAVAILABLE")
        .count();
    assert_eq!((booked, refused), (1, 9), "{replies:?}");
}

#[tokio::test]
async fn unknown_shows_are_404_before_the_upgrade() {
    let app = TestApp::spawn().await;
    match connect_async(ws_url(&app, 999)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn upgrades_from_foreign_origins_are_refused_with_403() {
    let app = TestApp::spawn_with(|c| {
        c.http.allowed_origins =
            boxoffice::config::AllowedOrigins::List(vec!["https://tickets.example.com".into()])
    })
    .await;
    let show = app.create_show(3).await;
    let with_origin = |origin: &str| {
        let mut req = ws_url(&app, show).into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    match connect_async(with_origin("https://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(
        connect_async(with_origin("https://tickets.example.com"))
            .await
            .is_ok()
    );
    assert!(
        connect_async(with_origin(&format!("http://{}", app.addr)))
            .await
            .is_ok(),
        "same origin"
    );
}

#[tokio::test]
async fn sessions_over_max_connections_get_503() {
    let app = TestApp::spawn_with(|c| c.ws.max_sessions = 2).await;
    let show = app.create_show(3).await;
    let a = WsClient::connect(&app, show).await;
    let _b = WsClient::connect(&app, show).await;
    match connect_async(ws_url(&app, show)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    drop(a);
    crate::helpers::eventually(SOON, "a slot frees up", || async {
        connect_async(ws_url(&app, show)).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_command_flood_gets_rate_limited_errors() {
    let app = TestApp::spawn_with(|c| c.ws.commands_per_sec = 2).await;
    let show = app.create_show(3).await;
    let mut c = WsClient::connect(&app, show).await;
    for i in 0..10 {
        c.send_json(json!({"type": "ping", "request_id": i})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..10 {
        let frame = c.next_frame(SOON).await;
        match frame["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if frame["code"] == "RATE_LIMITED" => limited += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(
        // A burst of 4 passes at once; a slow machine may refill one or two more.
        (4..=6).contains(&pongs),
        "a burst of twice the rate passes: {pongs}"
    );
    assert_eq!(pongs + limited, 10);
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.ws.ping_interval = Duration::from_secs(1);
        c.ws.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let show = app.create_show(3).await;
    let (mut raw, _) = connect_async(ws_url(&app, show)).await.unwrap();
    // Read nothing, so not even the automatic pong goes back.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut close_code = None;
    while let Some(Ok(msg)) = futures_util::StreamExt::next(&mut raw).await {
        if let Message::Close(frame) = msg {
            close_code = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(close_code, Some(4000));
}

#[tokio::test]
async fn a_snapshot_arrives_in_parts_of_at_most_25_seats() {
    let app = TestApp::spawn().await;
    let show = app.create_show(60).await;
    app.book_ok(show, &["60"], true).await;
    let (mut raw, _) = connect_async(ws_url(&app, show)).await.unwrap();
    let mut sizes = Vec::new();
    for expected_part in 1..=3 {
        let msg = futures_util::StreamExt::next(&mut raw)
            .await
            .unwrap()
            .unwrap();
        let text = msg.to_text().unwrap();
        assert!(
            text.len() < 4 * 1024,
            "part {expected_part} is {} bytes",
            text.len()
        );
        let frame: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            (
                frame["type"].as_str(),
                frame["part"].as_u64(),
                frame["parts"].as_u64()
            ),
            (Some("snapshot"), Some(expected_part), Some(3))
        );
        assert_eq!(
            frame["counts"],
            json!({"AVAILABLE": 59, "RESERVED": 0, "BOOKED": 1}),
            "every part carries the show's counts"
        );
        sizes.push(frame["seats"].as_array().unwrap().len());
    }
    assert_eq!(sizes, [25, 25, 10]);

    let client = WsClient::connect(&app, show).await;
    assert_eq!(
        client.map,
        db_map(&app, show).await,
        "the parts make the whole map"
    );
    assert_eq!(client.snapshots, 1, "one snapshot, in three parts");
}
