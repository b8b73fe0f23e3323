use std::net::SocketAddr;

use boxoffice::{Application, Config};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{TestApp, assert_error, create_show_at, test_config};

#[tokio::test]
async fn a_restart_keeps_all_data() {
    let mut app = TestApp::spawn().await;
    let show = app.create_show(8).await;
    let (sold, _) = app.book_ok(show, &["1", "2"], true).await;
    let (held, _) = app.book_ok(show, &["5"], false).await;
    let (_, seats_before) = app.get(&format!("/shows/{show}/seats")).await;
    app.stop().await;

    let again = app.another_instance().await;
    let (_, shows) = again.get("/shows").await;
    assert_eq!(shows["count"], 1);
    assert_eq!(shows["shows"][0]["available_seats"], 5);
    let (_, seats_after) = again.get(&format!("/shows/{show}/seats")).await;
    assert_eq!(seats_after, seats_before);
    assert_eq!(
        again.get(&format!("/bookings/{sold}")).await.1["booking"]["status"],
        "CONFIRMED"
    );
    assert_eq!(
        again.get(&format!("/bookings/{held}")).await.1["booking"]["status"],
        "PENDING"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_booking_finish() {
    let mut app = TestApp::spawn().await;
    let show = app.create_show(3).await;

    // Hold seat 1's row lock so that the booking below waits inside its transaction.
    let blocker = app.lock_seat(show, "1").await;
    let request = app
        .client
        .post(app.url(&format!("/shows/{show}/book")))
        .json(&json!({"seat_nos": ["1"], "user_id": "late"}));
    let in_flight = tokio::spawn(request.send());
    app.until_a_transaction_waits_for_a_lock().await;

    let server = app.begin_shutdown();
    blocker.commit().await.unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 201);
    server.await.unwrap().expect("clean shutdown");
    assert_eq!(app.seat_status(show, "1").await, "BOOKED");
    assert!(
        app.client.get(app.url("/health")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_second_instance_sees_the_first_ones_bookings() {
    let app = TestApp::spawn().await;
    let other = app.another_instance().await;
    let show = app.create_show(4).await;
    app.book_ok(show, &["2"], true).await;
    assert_error(
        &other.book(show, &["2"], true).await,
        409,
        "SEATS_UNAVAILABLE",
    );
}

/// `localhost` is `::1` first on some machines and `127.0.0.1` on others: the
/// default HOST answers on both, on one port.
#[tokio::test]
async fn the_default_host_answers_on_both_loopback_addresses() {
    if !has_ipv6_loopback() {
        return;
    }
    let mut app = TestApp::spawn_with(|c| c.http.host = boxoffice::config::Host::Localhost).await;
    let port = app.addr.port();
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let response = app
            .client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{base} answers: {e}"));
        assert_eq!(response.status(), 200, "{base}");
    }
    app.stop().await;
}

/// A config without DATABASE_URL, so that boxoffice runs a cluster of its own in
/// DATA_DIR, `pg` in the returned directory (which the test removes).
fn own_cluster_config(name: &str) -> (Config, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("boxoffice-{name}-{}", std::process::id()));
    let mut config = test_config("unused");
    config.database.url = None;
    config.database.data_dir = dir.join("pg");
    (config, dir)
}

/// Starts a server with its own PostgreSQL; returns its address, the sender that
/// stops it, and its task.
async fn run(
    config: Config,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<anyhow::Result<()>>,
) {
    let app = Application::build(config)
        .await
        .expect("starts its own PostgreSQL");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// A program already on `[::1]:port` would answer the clients whose `localhost`
/// is `::1`: the server refuses to start rather than serve only half of them.
#[tokio::test]
async fn the_default_host_will_not_share_its_port_with_another_program() {
    if !has_ipv6_loopback() {
        return;
    }
    let squatter = std::net::TcpListener::bind("[::1]:0").expect("an IPv6 loopback");
    let port = squatter.local_addr().unwrap().port();
    let addrs = boxoffice::config::Host::Localhost.addrs();
    let refused = boxoffice::http::serve::listen_on(&addrs, port, 16).err();
    assert_eq!(
        refused.map(|e| e.kind()),
        Some(std::io::ErrorKind::AddrInUse),
        "127.0.0.1:{port} is free, [::1]:{port} is not"
    );
    drop(squatter);
    let both = boxoffice::http::serve::listen_on(&addrs, 0, 16).expect("port 0 binds both");
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0].local_addr().unwrap().port(),
        both[1].local_addr().unwrap().port()
    );
}

/// Whether this machine has `::1` (a container without IPv6 has not; the server
/// then serves on 127.0.0.1 alone, which the tests above cannot check).
fn has_ipv6_loopback() -> bool {
    let has = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !has {
        eprintln!("skipped: this machine has no IPv6 loopback (::1)");
    }
    has
}

/// Without DATABASE_URL, boxoffice runs its own cluster in DATA_DIR: created on the
/// first start, reused (data and all) on the next, stopped on shutdown.
#[tokio::test]
async fn the_local_cluster_is_created_once_reused_and_stopped() {
    let (config, dir) = own_cluster_config("local");

    let (addr, stop, server) = run(config.clone()).await;
    let client = reqwest::Client::new();
    create_show_at(&client, addr, "Kept", 2).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        !dir.join("pg/postmaster.pid").exists(),
        "the cluster is stopped on shutdown"
    );

    let (addr, stop, server) = run(config).await;
    let shows: serde_json::Value = client
        .get(format!("http://{addr}/shows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shows["shows"][0]["name"], "Kept");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!dir.join("pg/postmaster.pid").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn demo_data_loads_into_an_empty_database_only() {
    let (_, url) = crate::helpers::fresh_database().await;
    let pool = boxoffice::db::connect(&url, 2).await.unwrap();
    assert!(
        boxoffice::db::load_demo(&pool).await.unwrap(),
        "loads into an empty database"
    );
    assert!(
        !boxoffice::db::load_demo(&pool).await.unwrap(),
        "and never twice"
    );
    let shows: Vec<(String, i32)> =
        sqlx::query_as("SELECT name, total_seats FROM shows ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        shows,
        [
            ("Rock Concert 2025".to_string(), 10),
            ("Jazz Night".to_string(), 5),
            ("Beethoven's Ninth · Grand Hall".to_string(), 486),
            ("The Magic Flute · Grand Hall".to_string(), 486),
        ]
    );
    let upcoming: i64 = sqlx::query_scalar("SELECT count(*) FROM shows WHERE start_time > now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(upcoming, 2, "the hall's shows are in the coming weeks");
    let seats: i64 = sqlx::query_scalar("SELECT count(*) FROM seats")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seats, 15 + 2 * 486);
}

#[test]
fn missing_postgres_binaries_are_explained() {
    let dir = std::env::temp_dir().join(format!("boxoffice-nobin-{}", std::process::id()));
    let err =
        boxoffice::db::LocalCluster::start(&dir, Some(std::path::Path::new("/nonexistent/bin")))
            .expect_err("no binaries there");
    let msg = format!("{err:#}");
    for hint in [
        "PG_BIN",
        "Install PostgreSQL 15",
        "DATABASE_URL",
        "docker compose up",
    ] {
        assert!(msg.contains(hint), "{msg:?} should mention {hint:?}");
    }
    assert!(
        !dir.exists(),
        "nothing is created when the binaries are missing"
    );
}

/// As root, PostgreSQL runs as `postgres`, which cannot enter a private directory.
#[test]
fn a_data_directory_postgres_cannot_reach_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let running_as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !running_as_root {
        return; // the check only applies to root
    }
    let private = std::env::temp_dir().join(format!("boxoffice-private-{}", std::process::id()));
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err =
        boxoffice::db::LocalCluster::start(&private.join("pg"), None).expect_err("unreachable");
    std::fs::remove_dir_all(&private).unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot reach") && msg.contains("DATA_DIR"),
        "{msg}"
    );
}

#[test]
fn a_bad_setting_stops_the_binary_with_one_line_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .env("PORT", "eighty")
        .env("DATABASE_URL", "postgres://unused/db")
        .output()
        .expect("run boxoffice");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PORT") && stderr.contains("eighty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    let (_, url) = crate::helpers::fresh_database().await;
    let (mut child, entry) = crate::helpers::spawn_binary_logging(&url).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(entry["level"], "INFO");
    assert!(
        entry["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{entry}"
    );
}

/// A second server on the same DATA_DIR refuses at once, naming the process that
/// holds it, and the first one's database keeps running.
#[tokio::test]
async fn a_second_server_on_the_same_data_dir_refuses_and_stops_nothing() {
    let (config, dir) = own_cluster_config("twice");
    let (addr, stop, server) = run(config.clone()).await;

    let started = std::time::Instant::now();
    let second = Application::build(config).await;
    let message = format!("{:#}", second.err().expect("the second server refuses"));
    assert!(
        message.contains("in use by another boxoffice server")
            && message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "the first server's database still runs"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreachable_database_stops_the_binary_within_ten_seconds_naming_host_port_and_cause() {
    // A port nobody listens on: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .env(
            "DATABASE_URL",
            format!("postgres://nobody@127.0.0.1:{port}/db"),
        )
        .env("PORT", "0")
        .env("RUST_LOG", "off")
        .output()
        .expect("run boxoffice");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("refused"),
        "{stderr}"
    );
}

/// A normal start on an existing database says nothing alarming, and text logs
/// written to a file or pipe carry no colour codes.
#[tokio::test]
async fn a_normal_start_logs_plain_text_without_database_notices() {
    use std::io::{BufRead, BufReader};
    let (_, url) = crate::helpers::fresh_database().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .env("DATABASE_URL", &url)
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "text")
        .env("ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run boxoffice");
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("listening");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(30), lines)
        .await
        .expect("started in time")
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines.iter().any(|l| l.contains("listening")), "{lines:?}");
    for line in &lines {
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes in a pipe: {line:?}"
        );
        assert!(
            !line.contains("_sqlx_migrations"),
            "no database notice: {line:?}"
        );
        assert!(!line.contains("ERROR"), "{line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_the_database_answers_and_changes_arrive() {
    let mut cluster = crate::helpers::DedicatedCluster::start("ready").await;
    let app = crate::helpers::TestApp::spawn_on("postgres".into(), cluster.url(), |_| {}).await;
    crate::helpers::eventually(std::time::Duration::from_secs(5), "ready", || async {
        app.get("/ready").await.0 == 200
    })
    .await;
    let (_, body) = app.get("/ready").await;
    assert_eq!(
        body,
        json!({"status": "ready", "database": "up", "listener": "up"})
    );
    cluster.stop().await;
    crate::helpers::eventually(std::time::Duration::from_secs(10), "not ready", || async {
        let (status, body) = app.get("/ready").await;
        status == 503 && body["database"] == "down" && body["listener"] == "down"
    })
    .await;
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 503, "/health keeps its old meaning");
}
