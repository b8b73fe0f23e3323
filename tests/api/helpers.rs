//! The test harness: a throwaway PostgreSQL cluster per test run, a fresh database
//! per test, and a boxoffice instance per test on a free port.
//!
//! The cluster lives in a temporary directory and is started once per test binary.
//! A watchdog process stops it and deletes the directory as soon as the test binary
//! exits, however it exits (success, failed assertion, panic or kill), so no
//! `postgres` outlives the run. `TEST_DATABASE_URL` points the tests at an existing
//! server instead; each test then drops its database when it ends.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use boxoffice::db::{self, LocalCluster};
use boxoffice::{Application, Config};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

struct TestServer {
    /// URL of the server's maintenance database (`postgres`).
    url: String,
    /// Set for an external server (TEST_DATABASE_URL), whose databases we must drop.
    external: bool,
    _cluster: Option<LocalCluster>,
}

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return TestServer {
                url,
                external: true,
                _cluster: None,
            };
        }
        let dir = std::env::temp_dir().join(format!("boxoffice-test-{}", std::process::id()));
        let cluster = LocalCluster::start(&dir.join("pg"), None)
            .expect("cannot start the test PostgreSQL cluster");
        spawn_watchdog(cluster.pid().expect("postmaster pid"), &dir);
        TestServer {
            url: cluster.url("postgres"),
            external: false,
            _cluster: Some(cluster),
        }
    })
}

/// Stops the cluster (SIGQUIT: immediate shutdown) and removes its directory once
/// this process is gone. It ignores the signals a terminal sends to the whole group.
#[expect(
    clippy::zombie_processes,
    reason = "the watchdog must outlive this process"
)]
fn spawn_watchdog(postmaster: u32, dir: &Path) {
    let script = format!(
        "trap '' INT TERM HUP; \
         while kill -0 {me} 2>/dev/null; do sleep 0.2; done; \
         kill -QUIT {postmaster} 2>/dev/null; \
         while kill -0 {postmaster} 2>/dev/null; do sleep 0.1; done; \
         rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the cluster watchdog");
}

/// A fresh, migrated database; returns its URL.
pub async fn fresh_database() -> (String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = server();
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    db::ensure_database(&server.url, &name)
        .await
        .expect("create test database");
    let url = database_url(&server.url, &name);
    let pool = db::connect(&url, 1)
        .await
        .expect("connect to test database");
    db::migrate(&pool).await.expect("migrate test database");
    pool.close().await;
    (name, url)
}

fn database_url(server_url: &str, name: &str) -> String {
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("a database URL ends in /name");
    format!("{base}/{name}")
}

/// A running boxoffice instance with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The `METRICS_ADDR` listener's address, when the test configured one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// A pool for inspecting and arranging the database directly.
    pub pool: PgPool,
    pub db_url: String,
    db_name: String,
    /// Whether this instance created its database (and drops it on an external server).
    owns_database: bool,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Spawns an instance on a new database after `configure` adjusts its config.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        let (db_name, db_url) = fresh_database().await;
        let mut app = TestApp::spawn_on(db_name, db_url, configure).await;
        app.owns_database = true;
        app
    }

    /// Spawns an instance on an existing database (a second instance, or a restart).
    pub async fn spawn_on(
        db_name: String,
        db_url: String,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = test_config(&db_url);
        configure(&mut config);
        let app = Application::build(config).await.expect("build the app");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        let pool = db::connect(&db_url, 4).await.expect("inspection pool");
        TestApp {
            addr,
            metrics_addr,
            client,
            pool,
            db_url,
            db_name,
            owns_database: false,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// A second instance on this one's database.
    pub async fn another_instance(&self) -> TestApp {
        self.another_instance_with(|_| {}).await
    }

    /// A second instance on this one's database, configured by `configure`.
    pub async fn another_instance_with(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_on(self.db_name.clone(), self.db_url.clone(), configure).await
    }

    /// Stops the instance gracefully and waits for it; the database stays.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server shut down cleanly");
        }
    }

    /// Signals shutdown without waiting, and hands back the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        let _ = self.stop.take().expect("running").send(());
        self.server.take().expect("running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /metrics` on the main port, as text.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response
            .expect("metrics answered")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.client.get(self.url(path)).send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        read(self.client.post(self.url(path)).json(body).send().await).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        read(self.client.post(self.url(path)).body(body).send().await).await
    }

    pub async fn post_with_token(&self, path: &str, token: &str) -> (u16, Value) {
        read(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .send()
                .await,
        )
        .await
    }

    /// `POST /admin/shows` with the admin token.
    pub async fn admin_create_show(&self, body: &Value) -> (u16, Value) {
        let request = self
            .client
            .post(self.url("/admin/shows"))
            .bearer_auth(ADMIN_TOKEN);
        read(request.json(body).send().await).await
    }

    /// `PATCH /admin/shows/:id` with `token` as the bearer (none: no header).
    pub async fn patch_show(
        &self,
        show_id: i64,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .patch(self.url(&format!("/admin/shows/{show_id}")))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await).await
    }

    /// The database's clock, to the millisecond (what requests carry in RFC 3339).
    pub async fn db_now(&self) -> chrono::DateTime<chrono::Utc> {
        use chrono::SubsecRound;
        let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        now.trunc_subsecs(3)
    }

    /// Creates a show with `seats` seats and returns its id.
    pub async fn create_show(&self, seats: u32) -> i64 {
        let body = json!({"name": "Test Show", "start_time": "2030-01-01T20:00:00Z", "total_seats": seats});
        let (status, body) = self.admin_create_show(&body).await;
        assert_eq!(status, 201, "create show: {body}");
        body["show"]["id"].as_i64().expect("show id")
    }

    pub async fn book(
        &self,
        show_id: i64,
        seat_nos: &[&str],
        immediate_confirm: bool,
    ) -> (u16, Value) {
        let body = json!({"seat_nos": seat_nos, "user_id": "tester", "immediate_confirm": immediate_confirm});
        self.post(&format!("/shows/{show_id}/book"), &body).await
    }

    /// Books and expects success; returns `(booking id, token)`.
    pub async fn book_ok(
        &self,
        show_id: i64,
        seat_nos: &[&str],
        immediate_confirm: bool,
    ) -> (i64, String) {
        let (status, body) = self.book(show_id, seat_nos, immediate_confirm).await;
        assert_eq!(status, 201, "booking {seat_nos:?}: {body}");
        let booking = &body["booking"];
        (
            booking["id"].as_i64().unwrap(),
            booking["token"].as_str().unwrap().to_string(),
        )
    }

    /// `POST /bookings/{id}/confirm` with `token` as the bearer.
    pub async fn confirm(&self, booking_id: i64, token: &str) -> (u16, Value) {
        self.post_with_token(&format!("/bookings/{booking_id}/confirm"), token)
            .await
    }

    /// `POST /bookings/{id}/cancel` with `token` as the bearer.
    pub async fn cancel(&self, booking_id: i64, token: &str) -> (u16, Value) {
        self.post_with_token(&format!("/bookings/{booking_id}/cancel"), token)
            .await
    }

    /// Locks one seat's row in a transaction of the test's own, so that a booking of
    /// it waits inside its transaction until the returned transaction ends.
    pub async fn lock_seat(
        &self,
        show_id: i64,
        seat_no: &str,
    ) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM seats WHERE show_id = $1 AND seat_no = $2 FOR UPDATE")
            .bind(show_id)
            .bind(seat_no)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    /// Waits until some transaction of this database waits for a row lock.
    pub async fn until_a_transaction_waits_for_a_lock(&self) {
        eventually(
            Duration::from_secs(5),
            "a transaction waits on a row lock",
            || async {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                WHERE datname = current_database() AND wait_event_type = 'Lock')",
                )
                .fetch_one(&self.pool)
                .await
                .unwrap()
            },
        )
        .await;
    }

    /// The status of one seat, straight from the database.
    pub async fn seat_status(&self, show_id: i64, seat_no: &str) -> String {
        sqlx::query_scalar("SELECT status FROM seats WHERE show_id = $1 AND seat_no = $2")
            .bind(show_id)
            .bind(seat_no)
            .fetch_one(&self.pool)
            .await
            .expect("seat exists")
    }

    /// Whether every seat of a show has `status`, as `GET /shows/{id}/seats` says.
    pub async fn all_seats_are(&self, show_id: i64, status: &str) -> bool {
        let (code, body) = self.get(&format!("/shows/{show_id}/seats")).await;
        assert_eq!(code, 200, "{body}");
        body["seats"]
            .as_array()
            .expect("a seat list")
            .iter()
            .all(|s| s["status"] == status)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.owns_database && server().external {
            drop_database(self.db_name.clone());
        }
    }
}

/// Drops a test database on an external server, from a thread of its own because
/// `Drop` cannot await.
fn drop_database(name: String) {
    let url = server().url.clone();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&url).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            }
        })
    })
    .join();
}

pub fn test_config(db_url: &str) -> Config {
    let mut config = Config::default();
    config.database.url = Some(db_url.to_string());
    config.database.pool_size = 10;
    config.http.host = boxoffice::config::Host::Addr([127, 0, 0, 1].into());
    config.http.port = 0;
    config.admin_token = Some(ADMIN_TOKEN.to_string());
    // Tests fire hundreds of requests from one address; the limit has a test of its own.
    config.http.requests_per_sec = None;
    // ...and hold thousands of sessions from it; these caps have tests of their own.
    config.ws.max_sessions_per_address = None;
    config.ws.commands_per_address_per_sec = None;
    config.booking.buyer_limits = boxoffice::config::BuyerLimits::default();
    config.booking.max_places_per_address = None;
    config
}

async fn read(response: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    let response = response.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

/// Asserts that an answer is the error `code`, with HTTP status `status`.
pub fn assert_error((got, body): &(u16, Value), status: u16, code: &str) {
    assert_eq!(
        (*got, body["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
}

/// Creates a show of `seats` seats through the admin API of a server running
/// outside a [`TestApp`] (a binary, a local cluster); returns its id.
pub async fn create_show_at(
    client: &reqwest::Client,
    addr: SocketAddr,
    name: &str,
    seats: u32,
) -> i64 {
    let body = json!({"name": name, "start_time": "2030-01-01T20:00:00Z", "total_seats": seats});
    let request = client
        .post(format!("http://{addr}/admin/shows"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body);
    let (status, created) = read(request.send().await).await;
    assert_eq!(status, 201, "create show: {created}");
    created["show"]["id"].as_i64().expect("show id")
}

/// An instant as requests carry it: RFC 3339, to the millisecond.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Polls `check` every 20 ms until it holds, or fails after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PostgreSQL cluster of one test's own, for tests that stop and start it.
/// Removed (stopped, directory deleted) when dropped.
pub struct DedicatedCluster {
    cluster: Option<LocalCluster>,
    dir: std::path::PathBuf,
}

impl DedicatedCluster {
    pub async fn start(name: &str) -> DedicatedCluster {
        let dir = std::env::temp_dir().join(format!("boxoffice-{name}-{}", std::process::id()));
        let data = dir.join("pg");
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&data, None))
            .await
            .unwrap()
            .expect("a dedicated cluster");
        DedicatedCluster {
            cluster: Some(cluster),
            dir,
        }
    }

    pub fn url(&self) -> String {
        self.cluster().url("postgres")
    }

    pub fn cluster(&self) -> &LocalCluster {
        self.cluster.as_ref().expect("present")
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are cut, open
    /// transactions roll back), as a database server behind TCP goes away: its
    /// socket file is put back, unbound, so that connecting is refused until the
    /// server starts again. (PostgreSQL removes the file when it stops, and sqlx
    /// waits out a refused connection until its acquire timeout, but gives up at once
    /// on a missing socket file; docs/DESIGN.md, "The local cluster". PostgreSQL
    /// replaces a stale file when it starts.)
    pub async fn stop(&mut self) {
        let mut cluster = self.cluster.take().expect("present");
        let cluster = tokio::task::spawn_blocking(move || cluster.stop().map(|_| cluster))
            .await
            .unwrap()
            .expect("pg_ctl stop");
        let socket = cluster
            .socket_dir()
            .join(format!(".s.PGSQL.{}", cluster.port()));
        drop(std::os::unix::net::UnixListener::bind(socket).expect("a socket left unbound"));
        self.cluster = Some(cluster);
    }

    pub async fn start_again(&mut self) {
        let mut cluster = self.cluster.take().expect("present");
        let cluster = tokio::task::spawn_blocking(move || cluster.start_again().map(|_| cluster))
            .await
            .unwrap()
            .expect("pg_ctl start");
        self.cluster = Some(cluster);
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        if let Some(mut cluster) = self.cluster.take() {
            let _ = cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Checks the invariants a booking storm must leave behind: every acknowledged
/// booking holds exactly its seats, and no seat is in two live bookings.
pub async fn assert_bookings_consistent(pool: &PgPool, acknowledged: &[(i64, Vec<String>)]) {
    for (id, seat_nos) in acknowledged {
        let mut held: Vec<String> = sqlx::query_scalar(
            "SELECT s.seat_no FROM seats s WHERE s.booking_id = $1 ORDER BY s.seat_no",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        held.sort();
        let mut want = seat_nos.clone();
        want.sort();
        assert_eq!(held, want, "acknowledged booking {id} holds its seats");
    }
    let doubles: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT seat_id FROM booking_seats WHERE live
                               GROUP BY seat_id HAVING count(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(doubles, 0, "no seat is in two live bookings");
}

/// Runs the boxoffice binary on `url` with JSON logs; returns it with the address
/// it listens on, once its "listening" log line is out.
pub async fn spawn_binary(url: &str) -> (std::process::Child, SocketAddr) {
    let (child, line) = spawn_binary_logging(url).await;
    let addr = line["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("a listening line with the address");
    (child, addr)
}

/// Like [`spawn_binary`], but returns the "listening" log line itself.
pub async fn spawn_binary_logging(url: &str) -> (std::process::Child, Value) {
    spawn_binary_with(url, &[], None).await
}

/// Runs the binary with extra settings and, if given, an open-file limit set by
/// the shell before it starts; returns it with its "listening" log line.
pub async fn spawn_binary_with(
    url: &str,
    env: &[(&str, &str)],
    open_files: Option<u32>,
) -> (std::process::Child, Value) {
    use std::io::{BufRead, BufReader};
    let binary = env!("CARGO_BIN_EXE_boxoffice");
    let mut command = match open_files {
        Some(n) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\""), binary]);
            sh
        }
        None => Command::new(binary),
    };
    let mut child = command
        .env("REST_REQUESTS_PER_SEC", "0")
        .envs(env.iter().copied())
        .env("DATABASE_URL", url)
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run boxoffice");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let line = lines.find(|l| l.contains("listening"))?;
        // Keep reading, so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Some(line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("started in time")
        .unwrap()
        .expect("a log line saying it listens");
    let entry = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    (child, entry)
}

/// The server process, stopped however the test ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
