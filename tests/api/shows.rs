use serde_json::json;

use crate::helpers::{TestApp, assert_error};

#[tokio::test]
async fn health_reports_ok_with_a_timestamp() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
}

#[tokio::test]
async fn creating_a_show_returns_the_old_shape_and_makes_its_seats() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Rock Concert", "start_time": "2030-05-01T20:00:00+02:00", "total_seats": 12});
    let (status, body) = app.admin_create_show(&body).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "Show created successfully");
    let show = &body["show"];
    assert_eq!(show["name"], "Rock Concert");
    assert_eq!(show["start_time"], "2030-05-01T18:00:00Z");
    assert_eq!(show["total_seats"], 12);
    assert_eq!(show["available_seats"], 12);
    assert!(show["created_at"].is_string());

    let id = show["id"].as_i64().unwrap();
    let (status, body) = app.get(&format!("/shows/{id}/seats")).await;
    assert_eq!(status, 200);
    assert_eq!(body["show_id"], id);
    assert_eq!(body["count"], 12);
    let seat_nos: Vec<&str> = body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seat_no"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
    assert_eq!(seat_nos, expected, "seats come in numeric order");
    let first = &body["seats"][0];
    assert_eq!(first["status"], "AVAILABLE");
    assert_eq!(first["version"], 0);
    assert!(first["id"].is_i64());
}

#[tokio::test]
async fn shows_are_listed_by_start_time_with_live_availability() {
    let app = TestApp::spawn().await;
    for (name, start) in [
        ("Late", "2030-03-01T20:00:00Z"),
        ("Early", "2030-01-01T20:00:00Z"),
    ] {
        let body = json!({"name": name, "start_time": start, "total_seats": 4});
        let (status, reply) = app.admin_create_show(&body).await;
        assert_eq!(status, 201, "{reply}");
    }
    let (_, listed) = app.get("/shows").await;
    let late_id = listed["shows"][1]["id"].as_i64().unwrap();
    app.book_ok(late_id, &["1", "2"], true).await;

    let (status, body) = app.get("/shows").await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 2);
    assert_eq!(body["shows"][0]["name"], "Early");
    assert_eq!(body["shows"][1]["name"], "Late");
    assert_eq!(body["shows"][0]["available_seats"], 4);
    assert_eq!(body["shows"][1]["available_seats"], 2);

    let (status, body) = app.get(&format!("/shows/{late_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["show"]["available_seats"], 2);
}

#[tokio::test]
async fn unknown_shows_and_routes_are_404_json() {
    let app = TestApp::spawn().await;
    assert_error(&app.get("/shows/999/seats").await, 404, "SHOW_NOT_FOUND");
    assert_error(&app.get("/shows/999").await, 404, "SHOW_NOT_FOUND");
    assert_error(&app.get("/no/such/route").await, 404, "NOT_FOUND");
    let resp = app.client.delete(app.url("/shows")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "X", "start_time": "2030-01-01T20:00:00Z", "total_seats": 3});
    assert_error(&app.post("/admin/shows", &body).await, 401, "UNAUTHORIZED");
    let resp = app
        .client
        .post(app.url("/admin/shows"))
        .bearer_auth("wrong-token-wrong-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (_, listed) = app.get("/shows").await;
    assert_eq!(listed["count"], 0, "no show was created");
}

#[tokio::test]
async fn without_an_admin_token_admin_routes_answer_loopback_clients() {
    let app = TestApp::spawn_with(|c| c.admin_token = None).await;
    let body = json!({"name": "X", "start_time": "2030-01-01T20:00:00Z", "total_seats": 3});
    let (status, reply) = app.post("/admin/shows", &body).await;
    assert_eq!(status, 201, "{reply}");
}

#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let maintenance = app.db_url.rsplit_once('/').unwrap().0.to_string() + "/postgres";
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&maintenance)
        .await
        .unwrap();
    let drop = format!("DROP DATABASE \"{name}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .unwrap();

    assert_error(&app.get("/health").await, 503, "DATABASE_UNAVAILABLE");
    assert_error(&app.get("/shows").await, 503, "DATABASE_UNAVAILABLE");
}

#[tokio::test]
async fn the_web_clients_are_served_by_the_server_itself() {
    let app = TestApp::spawn().await;
    for (path, content_type, contains) in [
        ("/", "text/html", "/assets/app.js"),
        ("/kiosk", "text/html", "/assets/kiosk.js"),
        ("/assets/app.js", "text/javascript", "showView"),
        ("/assets/show.js", "text/javascript", "LiveShow"),
        ("/assets/live.js", "text/javascript", "class LiveShow"),
        ("/assets/hallmap.js", "text/javascript", "class HallMap"),
        ("/assets/mine.js", "text/javascript", "localStorage"),
        ("/assets/util.js", "text/javascript", "idempotency"),
        ("/assets/style.css", "text/css", ".seat"),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let header = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(header.starts_with(content_type), "{path}: {header}");
        assert!(resp.text().await.unwrap().contains(contains), "{path}");
    }
    assert_error(&app.get("/assets/secrets.txt").await, 404, "NOT_FOUND");
}
