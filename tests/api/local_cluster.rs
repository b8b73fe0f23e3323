//! The local cluster (DATABASE_URL unset): who can reach it, and who may use it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use boxoffice::db::LocalCluster;
use sqlx::{Connection, PgConnection};

use crate::helpers::DedicatedCluster;

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// `psql` run as `nobody`, an account with no business in the cluster.
fn psql_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "psql",
        ])
        .args(args)
        .current_dir("/")
        .env("HOME", "/")
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql through setpriv")
}

/// `SELECT 1` through [`psql_as_nobody`], connecting as `target` says.
fn select_one_as_nobody(target: Vec<&str>) -> Output {
    let mut args = vec!["-X", "-w", "-c", "SELECT 1"];
    args.extend(target);
    psql_as_nobody(&args)
}

/// psql's options for the `postgres` database, as `postgres`, at `host` (an
/// address, or the directory of a socket) and `port`.
fn postgres_at<'a>(host: &'a str, port: &'a str) -> Vec<&'a str> {
    vec!["-h", host, "-p", port, "-U", "postgres", "-d", "postgres"]
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn select_one(url: &str) -> i32 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let one = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await;
    conn.close().await.unwrap();
    one.unwrap()
}

#[tokio::test]
async fn another_local_account_can_reach_the_cluster_neither_over_tcp_nor_through_its_socket() {
    if !running_as_root() {
        println!("skipped: acting as another local account (nobody) needs root");
        return;
    }
    let cluster = DedicatedCluster::start("strangers").await;
    let (url, port) = (cluster.url(), cluster.cluster().port().to_string());
    let socket_dir = cluster.cluster().socket_dir().to_str().unwrap().to_string();
    let mode = std::fs::metadata(&socket_dir).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "the socket directory is private");

    // The server's own account gets in with the URL boxoffice uses (psql reads it too).
    let ours = Command::new("psql")
        .args(["-X", "-w", "-At", "-c", "SELECT 'in'", &url])
        .output()
        .expect("run psql");
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert_eq!(String::from_utf8_lossy(&ours.stdout).trim(), "in");
    let runs = psql_as_nobody(&["--version"]);
    assert!(
        runs.status.success(),
        "nobody can run psql: {}",
        stderr(&runs)
    );

    let tcp = select_one_as_nobody(postgres_at("127.0.0.1", &port));
    assert!(!tcp.status.success(), "nobody got in over TCP");
    assert!(stderr(&tcp).contains("refused"), "{}", stderr(&tcp));
    for target in [vec![url.as_str()], postgres_at(&socket_dir, &port)] {
        let socket = select_one_as_nobody(target);
        assert!(!socket.status.success(), "nobody got in through the socket");
        assert!(
            stderr(&socket).contains("Permission denied"),
            "{}",
            stderr(&socket)
        );
    }
}

/// The lock is on the cluster's own directory: deleting the lock file earlier
/// versions kept beside it (as a tmp cleaner might) frees nothing.
#[tokio::test]
async fn a_deleted_lock_file_does_not_let_a_second_start_adopt_the_running_cluster() {
    let first = DedicatedCluster::start("relock").await;
    let data_dir = first.cluster().data_dir().to_path_buf();
    let _ = std::fs::remove_file(data_dir.with_extension("lock"));

    let again = data_dir.clone();
    let second = tokio::task::spawn_blocking(move || LocalCluster::start(&again, None))
        .await
        .unwrap();
    let message = format!("{:#}", second.expect_err("the second start refuses"));
    assert!(
        message.contains("in use by another boxoffice server")
            && message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    assert_eq!(
        select_one(&first.url()).await,
        1,
        "the first one still runs"
    );
}

/// Settings an older version wrote (TCP on 127.0.0.1, no socket) are replaced at
/// the next start.
#[tokio::test]
async fn a_cluster_configured_by_an_older_version_moves_to_its_socket_at_the_next_start() {
    let mut cluster = DedicatedCluster::start("upgrade").await;
    cluster.stop().await;
    let conf = cluster.cluster().data_dir().join("postgresql.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let before = &text[..text.find("# added by boxoffice").unwrap()];
    std::fs::write(
        &conf,
        format!(
            "{before}\n# added by boxoffice\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = ''\nmax_connections = 300\n"
        ),
    )
    .unwrap();
    cluster.start_again().await;

    let mut conn = PgConnection::connect(&cluster.url()).await.unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(listen, "");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(text.matches("# added by boxoffice").count(), 1, "{text}");
}

/// Stops whatever postmaster runs in a data directory and removes the directory,
/// panic or not.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        if let Some(pid) = postmaster(&self.0.join("pg")) {
            // SIGQUIT: immediate shutdown.
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn postmaster(data_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// What `kill -9` of a server leaves (its PostgreSQL, still running) is used by the
/// next server, and left running when that one stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_left_running_by_a_killed_server_is_used_by_the_next_one() {
    let dir = std::env::temp_dir().join(format!("boxoffice-orphan-{}", std::process::id()));
    let leftovers = Leftovers(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let data_dir = dir.join("pg");
    let (mut child, _) =
        crate::helpers::spawn_binary_with("", &[("DATA_DIR", data_dir.to_str().unwrap())], None)
            .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let orphan = postmaster(&data_dir).expect("its PostgreSQL still runs");

    let again = data_dir.clone();
    let mut cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&again, None))
        .await
        .unwrap()
        .expect("the orphan is used");
    assert!(!cluster.started_here());
    assert_eq!(cluster.pid().unwrap(), orphan);
    assert_eq!(select_one(&cluster.url("postgres")).await, 1);
    cluster.stop().unwrap();
    assert!(
        Path::new(&format!("/proc/{orphan}")).exists(),
        "a server this process did not start is left running"
    );
    drop(cluster);
    drop(leftovers);
}
