//! The OpenAPI document covers the router, and the router serves what it documents.

use std::collections::BTreeSet;

use crate::helpers::TestApp;

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_answers() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|method| (path.clone(), method.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect();

    // Routes can only be added through `routes!` (which documents them): no plain
    // `.route(` anywhere in the HTTP layer.
    let dir = format!("{}/src/http", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let plain = text
            .lines()
            .filter(|l| l.contains(".route(\"") && !l.trim_start().starts_with("//"))
            .filter(|l| !(path.ends_with("scrape.rs") && l.contains("\"/metrics\"")))
            .count();
        assert_eq!(plain, 0, "{} adds a route outside routes!", path.display());
    }

    // Every route a client can reach is documented...
    let expected = [
        ("/", "GET"),
        ("/kiosk", "GET"),
        ("/assets/{file}", "GET"),
        ("/health", "GET"),
        ("/ready", "GET"),
        ("/metrics", "GET"),
        ("/openapi.json", "GET"),
        ("/docs", "GET"),
        ("/shows", "GET"),
        ("/shows/{id}", "GET"),
        ("/shows/{id}/seats", "GET"),
        ("/shows/{id}/layout", "GET"),
        ("/shows/{id}/book", "POST"),
        ("/shows/{id}/ws", "GET"),
        ("/bookings/{id}", "GET"),
        ("/bookings/{id}/confirm", "POST"),
        ("/bookings/{id}/cancel", "POST"),
        ("/me/bookings", "GET"),
        ("/admin/shows", "POST"),
        ("/admin/shows/{id}", "PATCH"),
        ("/shows/{id}/queue", "POST"),
        ("/shows/{id}/queue/me", "GET"),
        ("/admin/shows/{id}/queue/pause", "POST"),
        ("/admin/shows/{id}/queue/resume", "POST"),
    ];
    let expected: BTreeSet<(String, String)> = expected
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(documented, expected);

    // ...and every documented route exists: it may refuse the request, but never
    // as an unknown route or method.
    for (path, method) in &documented {
        let url = app.url(&path.replace("{id}", "1").replace("{file}", "app.js"));
        let req = match method.as_str() {
            "GET" => app.client.get(url),
            "POST" => app.client.post(url).body("{}"),
            "PATCH" => app.client.patch(url).body("{}"),
            other => panic!("unexpected method {other}"),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let code = body["code"].as_str().unwrap_or_default();
        assert!(
            code != "NOT_FOUND" && code != "METHOD_NOT_ALLOWED",
            "{method} {path}: {status} {body}"
        );
    }

    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("/openapi.json"));
}

/// The rules the server holds requests to are in the document (clients and the
/// contract test generate requests from it), with this server's own limits.
#[tokio::test]
async fn the_document_states_the_rules_the_server_enforces() {
    let app = TestApp::spawn_with(|c| {
        c.booking.max_seats_per_booking = 4;
        c.booking.max_seats_per_show = 500;
    })
    .await;
    let (_, doc) = app.get("/openapi.json").await;
    let schema = |name: &str| doc["components"]["schemas"][name].clone();

    let currency = "^[A-Z]{3}$";
    assert_eq!(
        schema("NewShowRequest")["properties"]["currency"]["pattern"],
        currency
    );
    assert_eq!(
        schema("CategoryRequest")["properties"]["currency"]["pattern"],
        currency
    );
    assert_eq!(
        schema("NewShowRequest")["properties"]["total_seats"]["maximum"],
        500
    );
    assert_eq!(
        schema("NewShowRequest")["properties"]["layout"]["oneOf"][0]["$ref"],
        "#/components/schemas/LayoutRequest",
        "a layout is described field by field"
    );

    let book = schema("BookRequestBody");
    let seat_nos = &book["properties"]["seat_nos"];
    assert_eq!(
        (&seat_nos["minItems"], &seat_nos["maxItems"]),
        (&1.into(), &4.into())
    );
    assert_eq!(seat_nos["uniqueItems"], true);
    assert_eq!(
        schema("BestAvailableBody")["properties"]["count"]["maximum"],
        4
    );
    assert_eq!(
        book["required"],
        serde_json::json!(["user_id"]),
        "AUTH=none"
    );
    assert_eq!(
        book["oneOf"].as_array().map(Vec::len),
        Some(2),
        "seat_nos or best_available"
    );

    for (path, method) in [
        ("/shows/{id}/book", "post"),
        ("/bookings/{id}/confirm", "post"),
        ("/bookings/{id}/cancel", "post"),
    ] {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        let key = params
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{method} {path} documents Idempotency-Key"));
        assert_eq!(key["in"], "header");
        let rule = &key["schema"];
        assert_eq!(
            (&rule["minLength"], &rule["maxLength"], &rule["pattern"]),
            (&1.into(), &200.into(), &"^[!-~]+$".into()),
            "{method} {path}"
        );
        let id = params.iter().find(|p| p["name"] == "id").unwrap();
        assert_eq!(id["schema"]["minimum"], 1, "{method} {path}");
    }

    // The server refuses what the document rules out.
    let show = serde_json::json!({"name": "S", "start_time": "2030-01-01T20:00:00Z",
                                  "total_seats": 5, "currency": ""});
    assert_eq!(app.admin_create_show(&show).await.0, 400);
}
