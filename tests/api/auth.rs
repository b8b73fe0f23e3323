//! AUTH=jwt: buyers proven by signed tokens, over REST and WebSocket.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use boxoffice::auth::{Auth, Expect, Verifier};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{TestApp, assert_error};
use crate::ws_client::{WsClient, ws_url};

const SECRET: &str = "a-test-secret-of-at-least-32-chars!!";

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": in_an_hour(), "iss": "tickets", "aud": "boxoffice"})
}

fn mint(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn jwt(sub: &str) -> String {
    mint(&claims(sub), SECRET)
}

async fn jwt_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.auth = Auth::Jwt(Arc::new(Verifier::hs256(
            SECRET.as_bytes(),
            &Expect {
                issuer: Some("tickets"),
                audience: Some("boxoffice"),
                leeway: 5,
            },
        )))
    })
    .await
}

/// A request with a bearer JWT (or none) and extra headers.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn book_as(
    app: &TestApp,
    show: i64,
    seat: &str,
    bearer: Option<&str>,
    hold: bool,
) -> (u16, Value) {
    let body = json!({"seat_nos": [seat], "immediate_confirm": !hold});
    call(
        app,
        reqwest::Method::POST,
        &format!("/shows/{show}/book"),
        bearer,
        &[],
        Some(body),
    )
    .await
}

#[tokio::test]
async fn missing_expired_forged_and_misdirected_tokens_are_401_and_change_nothing() {
    let app = jwt_app().await;
    let show = app.create_show(3).await;
    let expired = json!({"sub": "alice", "exp": 1000, "iss": "tickets", "aud": "boxoffice"});
    let elsewhere = json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets", "aud": "other"});
    // A token for another service of the same key leaves aud (or iss) out.
    let no_aud = json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets"});
    let no_iss = json!({"sub": "alice", "exp": in_an_hour(), "aud": "boxoffice"});
    let tomorrow = json!({"sub": "alice", "exp": in_an_hour() + 86_400, "nbf": in_an_hour() + 82_800,
        "iss": "tickets", "aud": "boxoffice"});
    // Beyond the 5 s leeway: no minute of grace nobody chose.
    let just_expired =
        json!({"sub": "alice", "exp": in_an_hour() - 3630, "iss": "tickets", "aud": "boxoffice"});
    for (token, says) in [
        (Some(mint(&no_aud, SECRET)), "aud"),
        (Some(mint(&no_iss, SECRET)), "iss"),
        (Some(mint(&tomorrow, SECRET)), "nbf"),
        (Some(mint(&just_expired, SECRET)), "expired"),
        (None, "Bearer <JWT>"),
        (Some(mint(&expired, SECRET)), "expired"),
        (
            Some(mint(
                &claims("alice"),
                "a-different-secret-of-32-characters!!",
            )),
            "signature",
        ),
        (Some(mint(&elsewhere, SECRET)), "audience"),
        (Some("not-a-jwt".to_string()), "not a valid JWT"),
    ] {
        let (status, body) = book_as(&app, show, "1", token.as_deref(), false).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{body} should say {says}"
        );
    }
    assert_eq!(app.seat_status(show, "1").await, "AVAILABLE");
    // Watching needs no token.
    let (status, _) = app.get(&format!("/shows/{show}/seats")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_buyer_is_the_tokens_subject() {
    let app = jwt_app().await;
    let show = app.create_show(3).await;
    let alice = jwt("alice");
    let (status, body) = book_as(&app, show, "1", Some(&alice), false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["booking"]["user_id"], "alice");
    let mallory = json!({"seat_nos": ["2"], "user_id": "mallory"});
    let path = format!("/shows/{show}/book");
    let answer = call(
        &app,
        reqwest::Method::POST,
        &path,
        Some(&alice),
        &[],
        Some(mallory),
    )
    .await;
    assert_error(&answer, 400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn owners_act_without_the_booking_token_and_strangers_see_nothing() {
    let app = jwt_app().await;
    let show = app.create_show(5).await;
    let (alice, bob) = (jwt("alice"), jwt("bob"));
    let (_, body) = book_as(&app, show, "1", Some(&alice), true).await;
    let id = body["booking"]["id"].as_i64().unwrap();
    let token = body["booking"]["token"].as_str().unwrap().to_string();
    let get = |bearer: Option<String>, headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(
                app,
                reqwest::Method::GET,
                &format!("/bookings/{id}"),
                bearer.as_deref(),
                &headers,
                None,
            )
            .await
        }
    };

    assert_eq!(
        get(Some(bob.clone()), vec![]).await.0,
        404,
        "a stranger learns nothing"
    );
    assert_eq!(get(None, vec![]).await.0, 401);
    let (status, body) = get(Some(alice.clone()), vec![]).await;
    assert_eq!(
        (status, body["booking"]["user_id"].as_str()),
        (200, Some("alice"))
    );
    let (status, _) = get(Some(crate::helpers::ADMIN_TOKEN.to_string()), vec![]).await;
    assert_eq!(status, 200, "the admin sees every booking");
    let (status, _) = get(Some(bob.clone()), vec![("X-Booking-Token", token.clone())]).await;
    assert_eq!(status, 200, "so does whoever holds its token");

    let confirm = format!("/bookings/{id}/confirm");
    let (status, _) = call(&app, reqwest::Method::POST, &confirm, Some(&bob), &[], None).await;
    assert_eq!(status, 404, "a stranger cannot confirm it");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &confirm,
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (status, body["booking"]["status"].as_str()),
        (200, Some("CONFIRMED")),
        "{body}"
    );
    // The token still works for anyone who holds it.
    let cancel = format!("/bookings/{id}/cancel");
    let headers = [("X-Booking-Token", token.as_str())];
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &cancel,
        Some(&bob),
        &headers,
        None,
    )
    .await;
    assert_eq!(status, 200);

    let (status, mine) = call(
        &app,
        reqwest::Method::GET,
        "/me/bookings",
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_eq!((status, mine["count"].as_i64()), (200, Some(1)), "{mine}");
    assert_eq!(mine["bookings"][0]["seat_nos"], json!(["1"]));
    let (_, theirs) = call(
        &app,
        reqwest::Method::GET,
        "/me/bookings",
        Some(&bob),
        &[],
        None,
    )
    .await;
    assert_eq!(theirs["count"], 0);
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_buyer() {
    let app = jwt_app().await;
    let show = app.create_show(5).await;
    let path = format!("/shows/{show}/book");
    let headers = [("Idempotency-Key", "same-key")];
    let body = |seat: &str| Some(json!({"seat_nos": [seat]}));
    let (a, _) = call(
        &app,
        reqwest::Method::POST,
        &path,
        Some(&jwt("alice")),
        &headers,
        body("1"),
    )
    .await;
    let (b, _) = call(
        &app,
        reqwest::Method::POST,
        &path,
        Some(&jwt("bob")),
        &headers,
        body("2"),
    )
    .await;
    assert_eq!(
        (a, b),
        (201, 201),
        "one buyer's key never answers another's request"
    );
}

#[tokio::test]
async fn websocket_sessions_watch_freely_and_sign_in_to_book() {
    let app = jwt_app().await;
    let show = app.create_show(5).await;

    let no_aud = mint(
        &json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets"}),
        SECRET,
    );
    for token in ["forged", no_aud.as_str()] {
        let url = format!("{}?access_token={token}", ws_url(&app, show));
        match connect_async(url).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }

    let mut ws = WsClient::connect(&app, show).await;
    let refused = ws.request(json!({"type": "book", "seat_nos": ["2"]})).await;
    assert_eq!(refused["code"], "UNAUTHORIZED", "{refused}");
    let expired = json!({"sub": "alice", "exp": 1000, "iss": "tickets", "aud": "boxoffice"});
    let bad = ws
        .request(json!({"type": "auth", "token": mint(&expired, SECRET)}))
        .await;
    assert_eq!(bad["code"], "UNAUTHORIZED");
    let signed_in = ws
        .request(json!({"type": "auth", "token": jwt("alice")}))
        .await;
    assert_eq!(
        (signed_in["type"].as_str(), signed_in["user_id"].as_str()),
        (Some("authenticated"), Some("alice"))
    );
    let booked = ws
        .request(json!({"type": "book", "seat_nos": ["2"], "immediate_confirm": false}))
        .await;
    assert_eq!(booked["booking"]["user_id"], "alice", "{booked}");
    let id = booked["booking"]["id"].as_i64().unwrap();
    let confirmed = ws
        .request(json!({"type": "confirm", "booking_id": id}))
        .await;
    assert_eq!(
        confirmed["type"], "confirmed",
        "the owner needs no booking token: {confirmed}"
    );

    // Signed in on the upgrade itself.
    let url = format!("{}?access_token={}", ws_url(&app, show), jwt("bob"));
    let (mut raw, _) = connect_async(url).await.unwrap();
    let snapshot = raw.next().await.unwrap().unwrap();
    assert!(snapshot.to_text().unwrap().contains("snapshot"));
}

async fn public_key_app(file: &str) -> TestApp {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    TestApp::spawn_with(move |c| {
        c.auth = Auth::Jwt(Arc::new(
            Verifier::public_key(&path, &Expect::default()).unwrap(),
        ))
    })
    .await
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_their_public_keys() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (algorithm, public, private) in [
        (Algorithm::RS256, "rs256-public.pem", "rs256-private.pem"),
        (Algorithm::ES256, "es256-public.pem", "es256-private.pem"),
    ] {
        let app = public_key_app(public).await;
        let show = app.create_show(2).await;
        let pem = std::fs::read(fixtures.join(private)).unwrap();
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let claims = json!({"sub": "carol", "exp": in_an_hour()});
        let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap();
        let (status, body) = book_as(&app, show, "1", Some(&token), false).await;
        assert_eq!(status, 201, "{algorithm:?}: {body}");
        // A token signed with a shared secret is not accepted by a public-key server.
        let (status, _) = book_as(&app, show, "2", Some(&jwt("carol")), false).await;
        assert_eq!(status, 401, "{algorithm:?}");
    }
}

#[tokio::test]
async fn the_mint_script_makes_tokens_the_server_accepts() {
    let app = jwt_app().await;
    let show = app.create_show(2).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/websocat/mint-jwt.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["dave", "600", "tickets", "boxoffice"])
        .env("JWT_SECRET", SECRET)
        .output()
        .expect("run mint-jwt.sh (needs openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let (status, body) = book_as(&app, show, "1", Some(token.trim()), false).await;
    assert_eq!(
        (status, body["booking"]["user_id"].as_str()),
        (201, Some("dave")),
        "{body}"
    );
}

/// Under AUTH=jwt a waiting room's buyer is the token's `sub`: every session and
/// REST call of that buyer has one place, and an admission is that buyer's only.
#[tokio::test]
async fn a_signed_in_buyer_has_one_place_in_a_waiting_room() {
    let app = jwt_app().await;
    let body = json!({"name": "Queued", "start_time": "2030-01-01T20:00:00Z", "total_seats": 5,
        "queue": {"admit_per_minute": 60000, "max_active": 10}});
    let (status, created) = app.admin_create_show(&body).await;
    assert_eq!(status, 201, "{created}");
    let show = created["show"]["id"].as_i64().unwrap();
    let join = |token: Option<String>| {
        let mut request = app.client.post(app.url(&format!("/shows/{show}/queue")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_error(&join(None).await, 401, "UNAUTHORIZED");
    let (status, first) = join(Some(jwt("alice"))).await;
    assert_eq!(status, 200, "{first}");
    assert!(
        first["queue_id"].is_null(),
        "no queue id under AUTH=jwt: {first}"
    );
    let (_, again) = join(Some(jwt("alice"))).await;
    let url = format!("{}?access_token={}", ws_url(&app, show), jwt("alice"));
    let (stream, _) = connect_async(url).await.unwrap();
    let mut session = WsClient::from_stream(stream).await;
    let placed = session
        .until(std::time::Duration::from_secs(10), |f| {
            f["type"] == "queue" && f["rank"].is_i64()
        })
        .await;
    assert_eq!(again["queue"]["state"], "waiting", "{again}");
    let me: Value = app
        .client
        .get(app.url(&format!("/shows/{show}/queue/me")))
        .bearer_auth(jwt("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        placed["rank"], me["queue"]["rank"],
        "one place: {placed} {me}"
    );
    let joined: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_places WHERE show_id = $1")
        .bind(show)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(joined, 1, "two joins and a session of one buyer: one place");
    let token = session
        .until(std::time::Duration::from_secs(10), |f| {
            f["type"] == "admitted"
        })
        .await["admission_token"]
        .as_str()
        .unwrap()
        .to_string();
    let book = |bearer: String| {
        let request = app
            .client
            .post(app.url(&format!("/shows/{show}/book")))
            .bearer_auth(bearer)
            .header("X-Admission-Token", token.clone())
            .json(&json!({"seat_nos": ["1"], "immediate_confirm": false}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_error(&book(jwt("bob")).await, 403, "ADMISSION_INVALID");
    let (status, held) = book(jwt("alice")).await;
    assert_eq!(status, 201, "{held}");
}
