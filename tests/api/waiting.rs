//! The waiting room, end to end: joining before the sale, the shuffle at its
//! opening, admission at the configured pace and never beyond `max_active` (with
//! two instances ticking), admissions as signed tokens the booking needs, and
//! places that survive `kill -9`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, KillOnDrop, TestApp, assert_error, eventually, rfc3339, spawn_binary,
};
use crate::ws_client::WsClient;

/// A show of `seats` seats opening `opens_in` from now, with a waiting room.
async fn queued_show(app: &TestApp, seats: u32, opens_in: chrono::Duration, queue: Value) -> i64 {
    let opens = app.db_now().await + opens_in;
    let body = json!({"name": "On-sale", "start_time": "2030-01-01T20:00:00Z", "total_seats": seats,
        "sales_open_at": rfc3339(opens), "queue": queue});
    let (status, created) = app.admin_create_show(&body).await;
    assert_eq!(status, 201, "{created}");
    created["show"]["id"].as_i64().unwrap()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn join(app: &TestApp, show: i64, queue_id: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = queue_id.map(|id| ("X-Queue-Id", id)).into_iter().collect();
    send(
        app,
        reqwest::Method::POST,
        &format!("/shows/{show}/queue"),
        &headers,
        None,
    )
    .await
}

/// Joins as a new buyer; the queue id it was given.
async fn queue_id(app: &TestApp, show: i64) -> String {
    let (status, joined) = join(app, show, None).await;
    assert_eq!(status, 200, "{joined}");
    joined["queue_id"].as_str().expect("a queue id").to_string()
}

async fn me(app: &TestApp, show: i64, queue_id: &str) -> (u16, Value) {
    let headers = [("X-Queue-Id", queue_id)];
    send(
        app,
        reqwest::Method::GET,
        &format!("/shows/{show}/queue/me"),
        &headers,
        None,
    )
    .await
}

async fn book_with(app: &TestApp, show: i64, seat: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let body = json!({"seat_nos": [seat], "user_id": "buyer", "immediate_confirm": false});
    send(
        app,
        reqwest::Method::POST,
        &format!("/shows/{show}/book"),
        headers,
        Some(&body),
    )
    .await
}

async fn active_admissions(pool: &sqlx::PgPool, show: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM queue_places
         WHERE show_id = $1 AND state = 'admitted' AND admitted_until > now()",
    )
    .bind(show)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn buyers_gather_are_shuffled_at_the_opening_and_book_only_with_their_admission() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 6000, "max_active": 3, "active_minutes": 5});
    let show = queued_show(&app, 20, chrono::Duration::seconds(2), queue).await;
    let (_, page) = app.get(&format!("/shows/{show}")).await;
    assert_eq!(page["show"]["queue"]["max_active"], 3, "{page}");
    assert_eq!(page["show"]["queue"]["paused"], false);

    let mut ids = Vec::new();
    for _ in 0..6 {
        let (status, joined) = join(&app, show, None).await;
        assert_eq!(status, 200, "{joined}");
        assert_eq!(joined["queue"]["state"], "waiting");
        assert!(
            joined["queue"]["position"].is_null(),
            "no position before the shuffle: {joined}"
        );
        ids.push(joined["queue_id"].as_str().unwrap().to_string());
    }
    // Joining again gives the same place, not a second one.
    let (_, again) = join(&app, show, Some(&ids[0])).await;
    assert!(again["queue_id"].is_null(), "{again}");
    assert_error(
        &join(&app, show, Some("forged.queue.id")).await,
        403,
        "ADMISSION_INVALID",
    );
    assert_error(&book_with(&app, show, "1", &[]).await, 409, "SALE_NOT_OPEN");

    // At the opening: ranks 1..6, three admitted (max_active), the rest waiting.
    eventually(Duration::from_secs(10), "three admitted", || async {
        active_admissions(&app.pool, show).await == 3
    })
    .await;
    let mut ranks = HashSet::new();
    let (mut admitted, mut waiting) = (Vec::new(), Vec::new());
    for id in &ids {
        let (status, place) = me(&app, show, id).await;
        assert_eq!(status, 200, "{place}");
        ranks.insert(place["queue"]["rank"].as_i64().unwrap());
        match place["queue"]["state"].as_str().unwrap() {
            "admitted" => admitted.push((
                id.clone(),
                place["admission_token"].as_str().unwrap().to_string(),
            )),
            "waiting" => {
                let position = place["queue"]["position"].as_i64().unwrap();
                assert!((1..=3).contains(&position), "{place}");
                assert_eq!(place["queue"]["ahead"].as_i64().unwrap(), position - 1);
                waiting.push(id.clone());
            }
            other => panic!("unexpected state {other}"),
        }
    }
    assert_eq!(
        ranks,
        (1..=6).collect(),
        "every buyer has a rank of their own"
    );
    assert_eq!((admitted.len(), waiting.len()), (3, 3));

    assert_error(
        &book_with(&app, show, "1", &[]).await,
        403,
        "ADMISSION_REQUIRED",
    );
    let (first, token) = &admitted[0];
    let (second, _) = &admitted[1];
    let others_token = [
        ("X-Admission-Token", token.as_str()),
        ("X-Queue-Id", second.as_str()),
    ];
    assert_error(
        &book_with(&app, show, "1", &others_token).await,
        403,
        "ADMISSION_INVALID",
    );
    let without_id = [("X-Admission-Token", token.as_str())];
    assert_error(
        &book_with(&app, show, "1", &without_id).await,
        403,
        "ADMISSION_INVALID",
    );
    let forged = [
        ("X-Admission-Token", "eyJ.forged.token"),
        ("X-Queue-Id", first.as_str()),
    ];
    assert_error(
        &book_with(&app, show, "1", &forged).await,
        403,
        "ADMISSION_INVALID",
    );
    let own = [
        ("X-Admission-Token", token.as_str()),
        ("X-Queue-Id", first.as_str()),
    ];
    let (status, held) = book_with(&app, show, "1", &own).await;
    assert_eq!(status, 201, "{held}");

    // Paying ends the admission, and the place goes to the next buyer.
    let id = held["booking"]["id"].as_i64().unwrap();
    assert_eq!(
        app.confirm(id, held["booking"]["token"].as_str().unwrap())
            .await
            .0,
        200
    );
    let (_, done) = me(&app, show, first).await;
    assert_eq!(done["queue"]["state"], "done", "{done}");
    assert_error(
        &book_with(&app, show, "2", &own).await,
        403,
        "ADMISSION_INVALID",
    );
    eventually(
        Duration::from_secs(10),
        "the next buyer admitted",
        || async {
            let states =
                futures_util::future::join_all(waiting.iter().map(|id| me(&app, show, id))).await;
            states
                .iter()
                .filter(|(_, p)| p["queue"]["state"] == "admitted")
                .count()
                == 1
        },
    )
    .await;
    assert_eq!(active_admissions(&app.pool, show).await, 3);
}

#[tokio::test]
async fn a_token_for_another_show_is_refused() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 6000, "max_active": 10});
    let a = queued_show(&app, 5, chrono::Duration::zero(), queue.clone()).await;
    let b = queued_show(&app, 5, chrono::Duration::zero(), queue).await;
    let (_, joined) = join(&app, a, None).await;
    let id = joined["queue_id"].as_str().unwrap().to_string();
    let token = eventually(Duration::from_secs(10), "admitted", || async {
        me(&app, a, &id).await.1["admission_token"].is_string()
    })
    .await;
    let _ = token;
    let (_, place) = me(&app, a, &id).await;
    let token = place["admission_token"].as_str().unwrap();
    let headers = [("X-Admission-Token", token), ("X-Queue-Id", id.as_str())];
    assert_error(
        &book_with(&app, b, "1", &headers).await,
        403,
        "ADMISSION_INVALID",
    );
    assert_eq!(book_with(&app, a, "1", &headers).await.0, 201);
}

#[tokio::test]
async fn two_instances_never_admit_more_than_max_active() {
    let app = TestApp::spawn().await;
    let other = app.another_instance().await;
    let queue = json!({"admit_per_minute": 60000, "max_active": 5, "active_minutes": 1});
    let show = queued_show(&app, 50, chrono::Duration::seconds(1), queue).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let on = if i % 2 == 0 { &app } else { &other };
        ids.push(queue_id(on, show).await);
    }
    // Admissions end as their holders pay, one after another, on both instances.
    let watch = async {
        let mut most = 0;
        for _ in 0..150 {
            most = most.max(active_admissions(&app.pool, show).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    };
    let pay = async {
        let mut paid = 0;
        for round in 0..40 {
            for (i, id) in ids.iter().enumerate() {
                let on = if i % 2 == 0 { &app } else { &other };
                let (_, place) = me(on, show, id).await;
                let Some(token) = place["admission_token"].as_str() else {
                    continue;
                };
                let headers = [("X-Admission-Token", token), ("X-Queue-Id", id.as_str())];
                let body = json!({"seat_nos": [format!("{}", i + 1)], "user_id": "b", "immediate_confirm": true});
                let (status, _) = send(
                    on,
                    reqwest::Method::POST,
                    &format!("/shows/{show}/book"),
                    &headers,
                    Some(&body),
                )
                .await;
                if status == 201 {
                    paid += 1;
                }
            }
            if paid >= 20 || round > 30 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        paid
    };
    let (most, paid) = tokio::join!(watch, pay);
    assert!(
        paid >= 10,
        "admissions kept flowing as places freed: {paid}"
    );
    assert!(most <= 5, "at most max_active admitted at once: saw {most}");
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT queue_buyer FROM bookings WHERE show_id = $1
         GROUP BY queue_buyer HAVING count(*) > 1) AS t",
    )
    .bind(show)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "nobody booked twice on one admission");
}

#[tokio::test]
async fn admissions_keep_the_configured_pace() {
    let app = TestApp::spawn().await;
    let rate = 300; // 5 a second
    let queue = json!({"admit_per_minute": rate, "max_active": 10_000});
    let show = queued_show(&app, 5, chrono::Duration::seconds(1), queue).await;
    for _ in 0..150 {
        join(&app, show, None).await;
    }
    let shuffled_at = eventually(Duration::from_secs(10), "shuffled", || async {
        let at: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT shuffled_at FROM show_queues WHERE show_id = $1")
                .bind(show)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        at.is_some()
    })
    .await;
    let _ = shuffled_at;
    tokio::time::sleep(Duration::from_secs(13)).await;
    // Admissions happen at the doorman's ticks (4 a second): by the last tick within
    // the first 12 s, rate x elapsed of them, within one.
    let (within, elapsed): (i64, f64) = sqlx::query_as(
        "SELECT count(*), extract(epoch FROM max(p.admitted_at) - q.shuffled_at)::float8
         FROM queue_places p JOIN show_queues q USING (show_id)
         WHERE p.show_id = $1 AND p.admitted_at <= q.shuffled_at + interval '12 seconds'
         GROUP BY q.shuffled_at",
    )
    .bind(show)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let expected = (f64::from(rate) * elapsed / 60.0).floor() as i64;
    println!("{within} admitted in the {elapsed:.2} s after the shuffle; {expected} by the rate");
    assert!(elapsed > 11.0, "the doorman kept ticking: {elapsed}");
    assert!(
        (within - expected).abs() <= 1,
        "{within} admitted, {expected} expected"
    );
}

#[tokio::test]
async fn a_session_waits_is_let_in_and_books_with_its_own_admission() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 6000, "max_active": 1, "active_minutes": 2});
    let show = queued_show(&app, 10, chrono::Duration::seconds(2), queue).await;
    let mut first = WsClient::connect(&app, show).await;
    let placed = first
        .until(Duration::from_secs(5), |f| f["type"] == "queue")
        .await;
    assert_eq!(placed["state"], "waiting", "{placed}");
    let queue_id = placed["queue_id"]
        .as_str()
        .expect("a queue id for AUTH=none")
        .to_string();
    let mut second = WsClient::connect(&app, show).await;
    second
        .until(Duration::from_secs(5), |f| f["type"] == "queue")
        .await;

    // One of the two is let in (max_active 1); the other hears the progress.
    let mut admitted = None;
    for _ in 0..2 {
        tokio::select! {
            f = first.until(Duration::from_secs(10), |f| f["type"] == "admitted") => admitted = Some((f, 1)),
            f = second.until(Duration::from_secs(10), |f| f["type"] == "admitted") => admitted = Some((f, 2)),
        }
        if admitted.is_some() {
            break;
        }
    }
    let (frame, which) = admitted.expect("someone admitted");
    assert!(frame["admission_token"].is_string(), "{frame}");
    assert!(frame["expires_at"].is_string());
    let (lucky, unlucky) = if which == 1 {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    let progress = unlucky
        .until(Duration::from_secs(10), |f| {
            f["type"] == "queue_progress" && f["admitted_through"] == 1
        })
        .await;
    assert_eq!(progress["shuffled"], true, "{progress}");
    let refused = unlucky.book(&["2"], false).await;
    assert_eq!(refused["code"], "ADMISSION_REQUIRED", "{refused}");
    let booked = lucky.book(&["1"], false).await;
    assert_eq!(booked["type"], "booked", "{booked}");

    // A client that comes back with its queue id has its place back.
    drop(first);
    let url = format!("ws://{}/shows/{show}/ws?queue_id={queue_id}", app.addr);
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut back = WsClient::from_stream(stream).await;
    let placed = back
        .until(Duration::from_secs(5), |f| f["type"] == "queue")
        .await;
    assert!(
        placed["queue_id"].is_null(),
        "the same place, no new id: {placed}"
    );
    assert!(placed["rank"].is_i64(), "{placed}");
}

#[tokio::test]
async fn kill_9_mid_queue_keeps_every_place() {
    let app = TestApp::spawn().await;
    let (child, addr) = spawn_binary(&app.db_url).await;
    let mut child = KillOnDrop(child);
    let client = reqwest::Client::new();
    let body = json!({"name": "Restart", "start_time": "2030-01-01T20:00:00Z", "total_seats": 5,
        "sales_open_at": rfc3339(app.db_now().await + chrono::Duration::seconds(1)),
        "queue": {"admit_per_minute": 60000, "max_active": 1}});
    let created: Value = client
        .post(format!("http://{addr}/admin/shows"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let show = created["show"]["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let joined: Value = client
            .post(format!("http://{addr}/shows/{show}/queue"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(joined["queue_id"].as_str().unwrap().to_string());
    }
    // Shuffled, and the one place (max_active 1) given, before the kill.
    eventually(
        Duration::from_secs(10),
        "shuffled and one admitted",
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(rank) FROM queue_places WHERE show_id = $1")
                    .bind(show)
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            n == 20 && active_admissions(&app.pool, show).await == 1
        },
    )
    .await;
    let ask = |addr: std::net::SocketAddr, id: String| {
        let client = client.clone();
        async move {
            let place: Value = client
                .get(format!("http://{addr}/shows/{show}/queue/me"))
                .header("X-Queue-Id", id)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                place["queue"]["rank"].as_i64().unwrap(),
                place["queue"]["state"].clone(),
            )
        }
    };
    let mut before = HashMap::new();
    for id in &ids {
        before.insert(id.clone(), ask(addr, id.clone()).await.0);
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let (restarted, addr) = spawn_binary(&app.db_url).await;
    let _restarted = KillOnDrop(restarted);
    let mut admitted = Vec::new();
    for id in &ids {
        let (rank, state) = ask(addr, id.clone()).await;
        assert_eq!(rank, before[id], "the same place after kill -9");
        if state == "admitted" {
            admitted.push(id.clone());
        }
    }
    assert_eq!(admitted.len(), 1, "the admission kept, and no second one");
    // The restarted doorman ticks on, and still lets nobody else in.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(active_admissions(&app.pool, show).await, 1);
}

/// Unseeded, over many small pre-queues: whoever joined first is equally likely to
/// end up at any place (chi-square, 5 degrees of freedom, failing by chance once in
/// a thousand runs; the seeded, larger check is the unit test of the shuffle).
#[tokio::test]
async fn the_first_joiner_has_no_advantage() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 1, "max_active": 1});
    let opens = app.db_now().await + chrono::Duration::seconds(3);
    let mut shows = Vec::new();
    for _ in 0..60 {
        let body = json!({"name": "Fair", "start_time": "2030-01-01T20:00:00Z", "total_seats": 1,
            "sales_open_at": rfc3339(opens), "queue": queue});
        let (_, created) = app.admin_create_show(&body).await;
        shows.push(created["show"]["id"].as_i64().unwrap());
    }
    let mut firsts = Vec::new();
    for show in &shows {
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(queue_id(&app, *show).await);
        }
        firsts.push((*show, ids.swap_remove(0)));
    }
    eventually(
        Duration::from_secs(15),
        "every pre-queue shuffled",
        || async {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM show_queues WHERE shuffled_at IS NULL")
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            left == 0
        },
    )
    .await;
    let mut counts = [0f64; 6];
    for (show, id) in &firsts {
        let rank = me(&app, *show, id).await.1["queue"]["rank"]
            .as_i64()
            .unwrap();
        counts[(rank - 1) as usize] += 1.0;
    }
    let expected = firsts.len() as f64 / 6.0;
    let chi: f64 = counts
        .iter()
        .map(|c| (c - expected).powi(2) / expected)
        .sum();
    println!("first joiner's places: {counts:?}, chi-square {chi:.2}");
    assert!(chi < 20.52, "chi-square {chi:.2} for {counts:?}");
}

#[tokio::test]
async fn an_admin_pauses_and_resumes_admissions_on_every_instance() {
    let app = TestApp::spawn().await;
    let other = app.another_instance().await;
    let queue = json!({"admit_per_minute": 60000, "max_active": 100});
    let show = queued_show(&app, 5, chrono::Duration::zero(), queue).await;
    let admin = [("Authorization", "Bearer test-admin-token-0123456789")];
    let (status, paused) = send(
        &app,
        reqwest::Method::POST,
        &format!("/admin/shows/{show}/queue/pause"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    // Give both doormen time to read the flag (a tick is a quarter of a second).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let on = if i % 2 == 0 { &app } else { &other };
        ids.push(queue_id(on, show).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        active_admissions(&app.pool, show).await,
        0,
        "nobody let in while paused"
    );
    let (_, page) = other.get(&format!("/shows/{show}")).await;
    assert_eq!(page["show"]["queue"]["paused"], true, "{page}");

    let resumed = send(
        &other,
        reqwest::Method::POST,
        &format!("/admin/shows/{show}/queue/resume"),
        &admin,
        None,
    )
    .await;
    assert_eq!(resumed.0, 200);
    let took = eventually(Duration::from_secs(5), "admissions resumed", || async {
        active_admissions(&app.pool, show).await == 6
    })
    .await;
    println!("admissions resumed {took:?} after the resume");
    assert!(
        took < Duration::from_secs(1),
        "every instance obeys within a second: {took:?}"
    );
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("boxoffice_queue_joins_total"), "{metrics}");
    assert_error(
        &send(
            &app,
            reqwest::Method::POST,
            "/admin/shows/999999/queue/pause",
            &admin,
            None,
        )
        .await,
        409,
        "NO_QUEUE",
    );

    // A rate change through PATCH reaches the show's page and its progress.
    let patch = json!({"queue": {"admit_per_minute": 120, "max_active": 100}});
    let (_, changed) = app.patch_show(show, &patch, Some(ADMIN_TOKEN)).await;
    assert_eq!(
        changed["show"]["queue"]["admit_per_minute"], 120,
        "{changed}"
    );
}

#[tokio::test]
async fn the_pre_queue_opens_at_its_time() {
    let app = TestApp::spawn().await;
    let now = app.db_now().await;
    let body = json!({"name": "Later", "start_time": "2030-01-01T20:00:00Z", "total_seats": 5,
        "sales_open_at": rfc3339(now + chrono::Duration::hours(2)),
        "queue": {"admit_per_minute": 60, "max_active": 10,
                  "pre_queue_opens_at": rfc3339(now + chrono::Duration::hours(1))}});
    let (_, created) = app.admin_create_show(&body).await;
    let show = created["show"]["id"].as_i64().unwrap();
    let (status, early) = join(&app, show, None).await;
    assert_eq!(status, 409, "{early}");
    assert_eq!(early["code"], "QUEUE_NOT_OPEN");
    assert!(early["opens_at"].is_string());
    let no_queue = app.create_show(3).await;
    assert_error(&join(&app, no_queue, None).await, 409, "NO_QUEUE");
    let late = json!({"name": "Bad", "start_time": "2030-01-01T20:00:00Z", "total_seats": 5,
        "sales_open_at": rfc3339(now), "queue": {"admit_per_minute": 60, "max_active": 10,
        "pre_queue_opens_at": rfc3339(now + chrono::Duration::hours(1))}});
    assert_error(
        &app.admin_create_show(&late).await,
        400,
        "VALIDATION_FAILED",
    );
}

#[tokio::test]
async fn an_opening_moved_later_puts_the_queue_back_to_a_pre_queue_until_someone_is_let_in() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 60000, "max_active": 10});
    let show = queued_show(&app, 5, chrono::Duration::zero(), queue).await;
    let admin = [("Authorization", "Bearer test-admin-token-0123456789")];
    let pause = format!("/admin/shows/{show}/queue/pause");
    assert_eq!(
        send(&app, reqwest::Method::POST, &pause, &admin, None)
            .await
            .0,
        200
    );
    let id = queue_id(&app, show).await;
    eventually(Duration::from_secs(10), "ranked", || async {
        me(&app, show, &id).await.1["queue"]["rank"].is_i64()
    })
    .await;
    let later = rfc3339(app.db_now().await + chrono::Duration::days(1));
    let on = &app;
    let patch =
        move |body: Value| async move { on.patch_show(show, &body, Some(ADMIN_TOKEN)).await };
    let (status, moved) = patch(json!({"sales_open_at": later})).await;
    assert_eq!(status, 200, "{moved}");
    let (_, place) = me(&app, show, &id).await;
    assert!(
        place["queue"]["rank"].is_null(),
        "back in the pre-queue: {place}"
    );

    // Once someone was let in, the opening cannot move later.
    let (status, _) = patch(json!({"sales_open_at": null})).await;
    assert_eq!(status, 200);
    let resume = format!("/admin/shows/{show}/queue/resume");
    assert_eq!(
        send(&app, reqwest::Method::POST, &resume, &admin, None)
            .await
            .0,
        200
    );
    eventually(Duration::from_secs(10), "admitted", || async {
        active_admissions(&app.pool, show).await == 1
    })
    .await;
    assert_error(
        &patch(json!({"sales_open_at": later})).await,
        400,
        "VALIDATION_FAILED",
    );
}

/// A place as the database has it: buyer, state, admitted at, admitted until.
type PlaceRow = (String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

#[tokio::test]
async fn an_admission_nobody_claims_lapses_and_the_place_goes_on() {
    let app = TestApp::spawn().await;
    let queue = json!({"admit_per_minute": 60000, "max_active": 1, "claim_secs": 1});
    let show = queued_show(&app, 5, chrono::Duration::zero(), queue).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(queue_id(&app, show).await);
    }
    let states = || async {
        let rows: Vec<PlaceRow> = sqlx::query_as(
            "SELECT buyer, state, admitted_at, admitted_until FROM queue_places WHERE show_id = $1 ORDER BY rank",
        )
        .bind(show)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows
    };
    // The first is let in and never asks: after claim_secs the place goes on.
    eventually(
        Duration::from_secs(10),
        "the first lapsed, the second let in",
        || async {
            let rows = states().await;
            rows.len() == 2 && rows[0].1 == "expired" && rows[1].1 == "admitted"
        },
    )
    .await;
    let rows = states().await;
    let (at, until) = (rows[1].2.unwrap(), rows[1].3.unwrap());
    assert!(
        until - at <= chrono::Duration::seconds(1),
        "unclaimed: {at} {until}"
    );
    // Asking claims it: the admission now lasts its active_minutes (10).
    for id in &ids {
        let (_, place) = me(&app, show, id).await;
        if place["queue"]["state"] == "admitted" {
            assert!(place["admission_token"].is_string(), "{place}");
        }
    }
    let rows = states().await;
    assert_eq!(rows[1].1, "admitted", "{rows:?}");
    let (at, until) = (rows[1].2.unwrap(), rows[1].3.unwrap());
    assert_eq!(until - at, chrono::Duration::minutes(10), "claimed");
}

/// Without sign-in every new session or join is a new place; one address may take
/// `MAX_PLACES_PER_ADDRESS` of them in a show, and others keep joining.
#[tokio::test]
async fn one_address_takes_at_most_its_share_of_places() {
    let app = TestApp::spawn_with(|c| c.booking.max_places_per_address = Some(3)).await;
    let queue = json!({"admit_per_minute": 60, "max_active": 1});
    let show = queued_show(&app, 5, chrono::Duration::hours(1), queue).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(queue_id(&app, show).await);
    }
    let (status, refused) = join(&app, show, None).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "USER_LIMIT_REACHED");
    assert_eq!(refused["limit"], "MAX_PLACES_PER_ADDRESS");
    assert_eq!(refused["has"], 3);
    // A session from the same address is refused the same way, and told so.
    let mut session = WsClient::connect(&app, show).await;
    let told = session
        .until(Duration::from_secs(5), |f| {
            f["type"] == "error" || f["type"] == "queue"
        })
        .await;
    assert_eq!(told["code"], "USER_LIMIT_REACHED", "no place: {told}");
    // The places it has are still its own...
    assert_eq!(join(&app, show, Some(&ids[0])).await.0, 200);
    // ...and another address joins.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .unwrap();
    let joined = other
        .post(app.url(&format!("/shows/{show}/queue")))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
}
