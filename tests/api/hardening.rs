//! The HTTP layer against hostile clients: slow headers, idle and stalled
//! connections, malformed framing, cross-site callers and bad bytes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, assert_error};

/// Sends raw bytes and reads the answer until the server closes or `within`.
async fn raw_exchange(app: &TestApp, request: &[u8], within: Duration) -> String {
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn json_body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer:?}"))
}

/// True once the server has closed this connection.
async fn closed_by_server(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_cannot_pin_the_server() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout = Duration::from_secs(2)).await;
    let addr = app.addr;
    let mut tricklers = Vec::new();
    for _ in 0..2000 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
        tricklers.push(tcp);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..6 {
            for tcp in &mut tricklers {
                let _ = tcp.write_all(b"s").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tricklers
    });

    let start = Instant::now();
    let (status, _) = app.get("/shows").await;
    println!(
        "a request beside 2,000 slow-header clients: {:?}",
        start.elapsed()
    );
    assert_eq!(status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    let mut tricklers = trickle.await.unwrap();
    let mut closed = 0;
    for tcp in &mut tricklers {
        if closed_by_server(tcp, Duration::from_millis(50)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 2000, "every slow-header connection was closed");
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout = Duration::from_secs(1)).await;
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_by_server(&mut idle, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout = Duration::from_secs(1)).await;
    let show = app.create_show(2).await;
    let request = format!(
        "POST /shows/{show}/book HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"seat_nos\""
    );
    let answer = raw_exchange(&app, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "REQUEST_TIMEOUT");
}

#[tokio::test]
async fn malformed_framing_and_header_floods_get_json_errors() {
    let app = TestApp::spawn().await;
    let answer = raw_exchange(
        &app,
        b"POST /shows/1/book HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "BAD_REQUEST");

    let mut flood = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..2000 {
        flood.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    flood.push_str("\r\n");
    let answer = raw_exchange(&app, flood.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "HEADERS_TOO_LARGE");
}

#[tokio::test]
async fn a_declared_body_over_the_cap_is_413_on_any_route() {
    let app = TestApp::spawn().await;
    let answer = raw_exchange(
        &app,
        b"GET /shows HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn nul_characters_and_trailing_data_are_400() {
    let app = TestApp::spawn().await;
    let show = app.create_show(3).await;
    let path = format!("/shows/{show}/book");
    for body in [
        json!({"seat_nos": ["1"], "user_id": "a\u{0}b"}),
        json!({"seat_nos": ["1\u{0}"], "user_id": "u"}),
    ] {
        assert_error(&app.post(&path, &body).await, 400, "VALIDATION_FAILED");
    }
    let nul_name =
        json!({"name": "a\u{0}", "start_time": "2030-01-01T20:00:00Z", "total_seats": 1});
    assert_error(
        &app.admin_create_show(&nul_name).await,
        400,
        "VALIDATION_FAILED",
    );
    let trailing = r#"{"seat_nos": ["1"], "user_id": "u"} trailing"#;
    assert_error(
        &app.post_raw(&path, trailing).await,
        400,
        "VALIDATION_FAILED",
    );
    // A token with a NUL cannot match anything, and is not a 500.
    let (id, _) = app.book_ok(show, &["2"], false).await;
    let (status, _) = app
        .post(
            &format!("/bookings/{id}/confirm"),
            &json!({"token": "ab\u{0}cd"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        app.seat_status(show, "1").await,
        "AVAILABLE",
        "nothing was booked"
    );
}

#[tokio::test]
async fn listed_origins_get_cors_headers_and_preflights_204() {
    let app = TestApp::spawn_with(|c| {
        c.http.allowed_origins =
            boxoffice::config::AllowedOrigins::List(vec!["http://frontend.test:5173".into()]);
    })
    .await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/admin/shows"))
        .header("Origin", "http://frontend.test:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://frontend.test:5173"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let listed = app
        .client
        .get(app.url("/shows"))
        .header("Origin", "http://frontend.test:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "http://frontend.test:5173"
    );
    let stranger = app
        .client
        .get(app.url("/shows"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_star_allows_any_origin() {
    let app =
        TestApp::spawn_with(|c| c.http.allowed_origins = boxoffice::config::AllowedOrigins::Any)
            .await;
    let listed = app
        .client
        .get(app.url("/shows"))
        .header("Origin", "https://anything.example")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.headers()["access-control-allow-origin"], "*");
}

/// Without ADMIN_TOKEN, only the operator's own requests may create shows.
#[tokio::test]
async fn admin_without_a_token_refuses_proxied_cross_site_and_rebinding_requests() {
    let app = TestApp::spawn_with(|c| c.admin_token = None).await;
    let body = json!({"name": "X", "start_time": "2030-01-01T20:00:00Z", "total_seats": 1});
    let create = |headers: &[(&str, &str)]| {
        let mut request = app.client.post(app.url("/admin/shows")).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    assert_eq!(
        create(&[]).await.unwrap().status(),
        201,
        "the operator at this machine"
    );
    for refused in [
        &[("X-Forwarded-For", "203.0.113.9")][..],
        &[("Forwarded", "for=203.0.113.9")][..],
        &[("Origin", "https://evil.example")][..],
        &[("Host", "attacker.example:3000")][..],
    ] {
        let response = create(refused).await.unwrap();
        // A foreign page is refused before the admin check (403), the rest by it.
        assert!(
            [401, 403].contains(&response.status().as_u16()),
            "{refused:?}: {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn a_rebinding_page_cannot_open_a_session() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::spawn().await;
    let show = app.create_show(2).await;
    let mut request = crate::ws_client::ws_url(&app, show)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Host", "attacker.example:3000".parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", "http://attacker.example:3000".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
}

/// Opens a WebSocket by hand, so that the test can send frames no library would.
async fn raw_session(app: &TestApp, show: i64) -> TcpStream {
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /shows/{show}/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Read the 101 head; frames may follow it in the same read.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// Reads frames until a Close, and returns its code.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            tcp.read_exact(&mut head).await.ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                tcp.read_exact(&mut ext).await.ok()?;
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                tcp.read_exact(&mut ext).await.ok()?;
                len = u64::from_be_bytes(ext);
            }
            let mut payload = vec![0u8; len as usize];
            tcp.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 0x8 {
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
}

fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn websocket_protocol_violations_close_with_their_codes() {
    let app = TestApp::spawn().await;
    let show = app.create_show(2).await;

    let mut unmasked = raw_session(&app, show).await;
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(close_code(&mut unmasked).await, Some(1002));

    let mut not_utf8 = raw_session(&app, show).await;
    not_utf8
        .write_all(&masked_frame(0x1, &[0xff, 0xfe, 0xfd]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut not_utf8).await, Some(1007));
}

#[tokio::test]
async fn a_ping_flood_is_refused_like_a_command_flood() {
    let app = TestApp::spawn_with(|c| c.ws.commands_per_sec = 5).await;
    let show = app.create_show(2).await;
    let mut flooder = raw_session(&app, show).await;
    for _ in 0..50 {
        flooder.write_all(&masked_frame(0x9, b"p")).await.unwrap();
    }
    assert_eq!(close_code(&mut flooder).await, Some(1008));
}

/// Under a small open-file limit, more idle connections than descriptors must not
/// stop the server: the connection cap keeps accepts within the limit, and idle
/// connections are closed at the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_idle_connections_than_descriptors_do_not_stop_the_server() {
    let (_, url) = crate::helpers::fresh_database().await;
    let (mut child, line) =
        crate::helpers::spawn_binary_with(&url, &[("HTTP_HEADER_TIMEOUT_SECS", "2")], Some(1024))
            .await;
    let addr: std::net::SocketAddr = line["addr"].as_str().unwrap().parse().unwrap();
    // From an address of their own: one address may not push out another.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        idle.push(socket.connect(addr).await.unwrap());
    }
    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let took = started.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    println!("a request beside 1,100 idle connections under a 1,024-file limit: {took:?}");
    assert_eq!(health.expect("answered").status(), 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn one_address_over_the_rest_limit_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.http.requests_per_sec = std::num::NonZeroU32::new(5)).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..15 {
        let response = app.client.get(app.url("/shows")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 && limited.is_none() {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_string();
            let body: Value = response.json().await.unwrap();
            limited = Some((retry_after, body));
        }
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    // A burst of 10 passes at once; a slow machine may refill a few more meanwhile.
    assert!(
        (10..=13).contains(&passed),
        "a burst of twice the rate passes: {statuses:?}"
    );
    let (retry_after, body) = limited.expect("the rest are refused");
    assert_eq!(retry_after, "1");
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    // Every route counts: health checks too.
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_name_it() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/shows/999")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["request_id"].as_str()),
        (Some("SHOW_NOT_FOUND"), Some(id.as_str()))
    );

    let response = app
        .client
        .get(app.url("/bookings/0"))
        .header("x-request-id", "support-ticket-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-request-id"],
        "support-ticket-42",
        "a caller's id is kept"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "support-ticket-42");
    let ok = app.client.get(app.url("/shows")).send().await.unwrap();
    assert!(ok.headers().contains_key("x-request-id"));
}

/// The bytes waiting in the kernel send queues of the server's sockets to these
/// client ports (`tx_queue` in /proc/net/tcp), the most of any one socket.
fn most_unsent(server: std::net::SocketAddr, clients: &[u16]) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{:04X}", server.port());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
            (fields[1] == local && clients.contains(&remote_port)).then(|| {
                let (tx, _) = fields[4].split_once(':').unwrap();
                u64::from_str_radix(tx, 16).unwrap()
            })
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_answer_pings_but_never_read_are_closed() {
    let app = TestApp::spawn_with(|c| {
        c.ws.send_timeout = Duration::from_secs(2);
        c.ws.ping_interval = Duration::from_secs(1);
        c.ws.idle_timeout = Duration::from_secs(3);
    })
    .await;
    // A full snapshot of 5,000 seats is about 600 KB: more than a client that never
    // reads takes into its receive buffer.
    let show = app.create_show(5000).await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(raw_session(&app, show).await);
    }
    let ports: Vec<u16> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    let started = Instant::now();
    let mut most = 0;
    let sessions = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("boxoffice_sessions "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    // They answer the server's Pings (an unsolicited Pong each second keeps
    // them from looking idle), and read nothing, ever.
    let closed_after = loop {
        for client in &mut clients {
            let _ = client.write_all(&masked_frame(0xA, b"")).await;
        }
        most = most.max(most_unsent(app.addr, &ports));
        let text = app.metrics_text().await;
        if sessions(&text) == Some(0.0) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2 + 5),
            "still open after WS_SEND_TIMEOUT_SECS + 5 s: {:?} sessions",
            sessions(&text)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!(
        "50 non-readers closed after {closed_after:?}; most unsent in one socket: {most} bytes"
    );
    assert!(
        most <= 4 * boxoffice::http::serve::SEND_BUFFER_BYTES as u64,
        "{most} bytes unsent in one socket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_error_answers_never_silently_close_a_keep_alive_connection() {
    let app = TestApp::spawn().await;
    let show = app.create_show(1).await;
    // One connection, reused: every follow-up rides on the connection the early
    // answer came back on.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let too_large = vec![b' '; 200 * 1024];
    let show_body = json!({"name": "X", "start_time": "2030-01-01T20:00:00Z", "total_seats": 1});
    let mut failed = Vec::new();
    for i in 0..3000 {
        let early = match i % 3 {
            // 401 before the body is read.
            0 => client
                .post(app.url("/admin/shows"))
                .bearer_auth("not-the-admin-token-at-all")
                .json(&show_body),
            // 413 on the declared length, before the body is read.
            1 => client
                .post(app.url(&format!("/shows/{show}/book")))
                .header("content-type", "application/json")
                .body(too_large.clone()),
            // 401 without a booking token.
            _ => client
                .post(app.url("/bookings/1/cancel"))
                .json(&json!({"reason": "x".repeat(2000)})),
        };
        let answer = early.send().await.map(|r| r.status().as_u16());
        let next = client
            .get(app.url("/health"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if !matches!(answer, Ok(401 | 413)) || !matches!(next, Ok(200)) {
            failed.push((i, format!("{answer:?}"), format!("{next:?}")));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 3,000 failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
}

#[tokio::test]
async fn a_client_sending_a_large_body_sees_the_413() {
    let app = TestApp::spawn().await;
    let show = app.create_show(1).await;
    // Python's urllib sends the whole body before it reads the answer: a server that
    // closes while the body is still arriving resets the connection under the 413.
    let script = r#"
import json, sys, urllib.error, urllib.request
seen = 0
for _ in range(3):
    body = b'{"seat_nos": ["1"], "user_id": "' + b'x' * 2000000 + b'"}'
    request = urllib.request.Request(sys.argv[1], data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
        print("accepted?")
    except urllib.error.HTTPError as e:
        if e.code == 413 and json.loads(e.read())["code"] == "PAYLOAD_TOO_LARGE":
            seen += 1
    except Exception as e:
        print("lost:", repr(e))
print("seen", seen)
"#;
    let url = app.url(&format!("/shows/{show}/book"));
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, &url])
        .output()
        .await
        .expect("python3 runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.trim_end().ends_with("seen 3"), "{printed}");
}
