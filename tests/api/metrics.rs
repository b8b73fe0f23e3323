//! GET /metrics: Prometheus's text format, with every figure an operator watches.
//! The recorder is global to the test process, so counters include other tests'
//! work: assertions are about what this test adds, or about presence.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, eventually};
use crate::ws_client::WsClient;

async fn scrape(app: &TestApp, url: &str) -> (u16, String) {
    let resp = app.client.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The value of the first series whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_show_requests_bookings_sessions_fanout_and_the_pool() {
    let app = TestApp::spawn().await;
    let show = app.create_show(10).await;
    let mut watcher = WsClient::connect(&app, show).await;
    let url = app.url("/metrics");
    let (_, before) = scrape(&app, &url).await;
    let booked = r#"boxoffice_bookings_total{outcome="booked"}"#;
    let conflict = r#"boxoffice_bookings_total{outcome="conflict"}"#;
    let (b0, c0) = (
        value(&before, booked).unwrap_or(0.0),
        value(&before, conflict).unwrap_or(0.0),
    );

    app.book_ok(show, &["1", "2"], true).await;
    let (status, _) = app.book(show, &["2"], true).await;
    assert_eq!(status, 409);
    watcher.drain_for(Duration::from_millis(200)).await;
    let (status, text) = scrape(&app, &url).await;
    assert_eq!(status, 200);
    assert!(value(&text, booked).unwrap() >= b0 + 1.0, "{text}");
    assert!(value(&text, conflict).unwrap() >= c0 + 1.0);
    for present in [
        r#"boxoffice_http_requests_total{route="/shows/{id}/book",method="POST",status="201"}"#,
        r#"boxoffice_http_requests_total{route="/shows/{id}/book",method="POST",status="409"}"#,
        "boxoffice_booking_duration_seconds_bucket",
        "boxoffice_booking_batch_size_bucket",
        "boxoffice_fanout_lag_seconds_count",
        "boxoffice_sessions ",
        "boxoffice_db_pool_connections ",
        "boxoffice_db_pool_in_use ",
        "boxoffice_listener_up 1",
    ] {
        assert!(text.contains(present), "no {present} in\n{text}");
    }
    assert!(
        text.contains(&format!("boxoffice_show_sessions{{show_id=\"{show}\"}} 1")),
        "the watched show is among the busiest:\n{text}"
    );
    let (status, _) = scrape(&app, &app.url("/nowhere")).await;
    assert_eq!(status, 404);
    let (_, text) = scrape(&app, &url).await;
    assert!(text.contains(r#"route="unmatched",method="GET",status="404""#));
}

#[tokio::test]
async fn metrics_can_have_a_port_and_a_token_of_their_own() {
    let app = TestApp::spawn_with(|c| {
        c.metrics.addr = Some("127.0.0.1:0".parse().unwrap());
        c.metrics.token = Some("scrape-token-123".into());
    })
    .await;
    let (status, _) = app.get("/metrics").await;
    assert_eq!(status, 404, "not on the main port");
    let addr = app.metrics_addr.expect("a metrics listener");
    let url = format!("http://{addr}/metrics");
    let (status, _) = scrape(&app, &url).await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .get(&url)
        .bearer_auth("scrape-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("boxoffice_sessions"));
}

#[tokio::test]
async fn an_expired_hold_is_measured_for_lateness() {
    let app = TestApp::spawn_with(|c| c.booking.hold_ttl = Duration::from_secs(1)).await;
    let show = app.create_show(3).await;
    let (_, body) = app
        .post(
            &format!("/shows/{show}/book"),
            &json!({"seat_nos": ["1"], "user_id": "u", "immediate_confirm": false}),
        )
        .await;
    assert!(body["booking"]["expires_at"].is_string());
    eventually(Duration::from_secs(5), "the hold expires", || async {
        app.seat_status(show, "1").await == "AVAILABLE"
    })
    .await;
    let (_, text) = scrape(&app, &app.url("/metrics")).await;
    assert!(value(&text, "boxoffice_expiry_lateness_seconds_count").unwrap_or(0.0) >= 1.0);
}
