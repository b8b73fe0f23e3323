//! A PostgreSQL cluster of boxoffice's own, for when no DATABASE_URL is given: the
//! server (and the test harness) create it on first use and reuse it afterwards.
//!
//! The cluster listens on 127.0.0.1 only, on a port picked at start, with no Unix
//! socket (the default socket directory is often not writable). `initdb` refuses to
//! run as root, so a root process runs the PostgreSQL tools as the `postgres` account.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// The superuser that `initdb` creates; local connections are trusted.
pub const SUPERUSER: &str = "postgres";

const MISSING_BINARIES: &str = "PostgreSQL server binaries (initdb, pg_ctl) were not found. \
Install PostgreSQL 15 or newer (Debian/Ubuntu: apt-get install postgresql), or set PG_BIN to \
their directory, or point DATABASE_URL at an existing server, or run `docker compose up`.";

/// A running local cluster, owned by this process while it holds the lock on
/// `DATA_DIR` (the lock goes with the process, however it ends). Stop it with
/// [`LocalCluster::stop`] (blocking: call it off the async runtime).
#[derive(Debug)]
pub struct LocalCluster {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    stopped: bool,
    /// False for a server that was already running when we came: it is used, but
    /// never stopped, since this process did not start it.
    started_here: bool,
    _lock: fs::File,
}

impl LocalCluster {
    /// Creates the cluster in `data_dir` unless it exists, then starts it, or adopts
    /// it if a server is already running there (say, after a crash of ours).
    pub fn start(data_dir: &Path, pg_bin: Option<&Path>) -> anyhow::Result<LocalCluster> {
        let bin_dir = find_bin_dir(pg_bin)?;
        let run_as = if effective_uid()? == 0 {
            Some(lookup_user(SUPERUSER).context(
                "running as root, so PostgreSQL must run as an unprivileged account, \
                 but there is no 'postgres' user; create one or run boxoffice as a normal user",
            )?)
        } else {
            None
        };
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let lock = lock_data_dir(&data_dir)?;
        let mut cluster = LocalCluster {
            data_dir,
            bin_dir,
            port: 0,
            run_as,
            stopped: false,
            started_here: true,
            _lock: lock,
        };

        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        if cluster.pg_ctl(&["status"])?.status.success() {
            // We hold the lock, so no boxoffice server uses it: a crash of ours left
            // it, or someone started it by hand. Use it; leave it running at exit.
            tracing::warn!(data_dir = %cluster.data_dir.display(), "using a PostgreSQL server that was already running; it will be left running");
            cluster.started_here = false;
        } else {
            cluster.start_server(free_port()?)?;
        }
        cluster.port = cluster.read_port()?;
        Ok(cluster)
    }

    /// Starts a stopped cluster again, on the port it had.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            self.start_server(self.port)?;
            self.stopped = false;
        }
        Ok(())
    }

    fn start_server(&self, port: u16) -> anyhow::Result<()> {
        let log = self.log_path();
        let log = log.to_string_lossy();
        let port = format!("-p {port}");
        let out = self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &port])?;
        if !out.status.success() {
            bail!(
                "PostgreSQL did not start in {}: {}\n{}",
                self.data_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_tail()
            );
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether [`LocalCluster::stop`] would stop a server (false for one that was
    /// running before this process came).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The postmaster's process id, from `postmaster.pid`.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.pid_file_line(0)?
            .parse()
            .context("malformed postmaster.pid")
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server, waiting for in-flight transactions to end (`-m fast`
    /// rolls back open transactions; committed data is already durable).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped || !self.started_here {
            return Ok(());
        }
        self.stopped = true;
        let out = self.pg_ctl(&["stop", "-w", "-m", "fast"])?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn init(&self) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            ensure_reachable(&self.data_dir, uid)?;
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(gid))
                .context("cannot hand the data directory to the postgres account")?;
        }
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))?;
        let data = self.data_dir.to_string_lossy();
        let out = self
            .command("initdb")
            .args([
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed in {}: {}",
                self.data_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // Loopback TCP only, no Unix socket; room for a few instances' pools.
        let settings = "\n# added by boxoffice\nlisten_addresses = '127.0.0.1'\n\
                        unix_socket_directories = ''\nmax_connections = 300\n";
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str(settings);
        fs::write(&conf, text).context("cannot write postgresql.conf")?;
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let data = self.data_dir.to_string_lossy();
        self.command("pg_ctl")
            .args(["-D", &data])
            .args(args)
            .output()
            .context("cannot run pg_ctl")
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(tool));
        // The tools must not inherit a working directory they cannot read.
        cmd.current_dir("/");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// `postmaster.pid` holds, one per line: pid, data directory, start time, port, ...
    fn pid_file_line(&self, n: usize) -> anyhow::Result<String> {
        let file = fs::File::open(self.data_dir.join("postmaster.pid"))
            .context("postmaster.pid is missing")?;
        let line = BufReader::new(file)
            .lines()
            .nth(n)
            .context("postmaster.pid is too short")??;
        Ok(line.trim().to_string())
    }

    fn read_port(&self) -> anyhow::Result<u16> {
        self.pid_file_line(3)?
            .parse()
            .context("malformed port in postmaster.pid")
    }
}

/// A safety net for error and panic paths: a cluster this process started and did
/// not stop is asked to stop (fast) without waiting, so that dropping never blocks
/// the async runtime. The normal path calls [`LocalCluster::stop`] off the runtime.
impl Drop for LocalCluster {
    fn drop(&mut self) {
        if self.stopped || !self.started_here {
            return;
        }
        let data = self.data_dir.to_string_lossy().into_owned();
        let asked = self
            .command("pg_ctl")
            .args(["-D", &data, "stop", "-m", "fast", "--no-wait"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(e) = asked {
            tracing::warn!(error = %e, "could not ask the local PostgreSQL cluster to stop");
        }
    }
}

/// Takes the lock that makes this process the only boxoffice server using
/// `data_dir`, and writes our pid into it for whoever finds it taken.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<fs::File> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.with_extension("lock");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "DATA_DIR {} is in use by another boxoffice server (process {}); stop it, or set DATA_DIR or DATABASE_URL",
                data_dir.display(),
                holder.trim()
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Running as root, the server runs as `uid`, which must be able to walk down to the
/// data directory: a checkout under /root (mode 700) is the usual trap.
fn ensure_reachable(data_dir: &Path, uid: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for dir in data_dir.ancestors().skip(1) {
        let meta = fs::metadata(dir)?;
        if meta.uid() != uid && meta.mode() & 0o001 == 0 {
            bail!(
                "the postgres account cannot reach {} (no search permission on {}); \
                 set DATA_DIR to a directory it can reach, such as /var/tmp/boxoffice, or set DATABASE_URL",
                data_dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// PG_BIN, then PATH, then `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
fn find_bin_dir(pg_bin: Option<&Path>) -> anyhow::Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = pg_bin {
        if has_tools(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "PG_BIN {} holds no initdb and pg_ctl. {MISSING_BINARIES}",
            dir.display()
        );
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|d| has_tools(d)) {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).context(MISSING_BINARIES)
}

/// The effective uid, from /proc (std offers no safe getter).
fn effective_uid() -> anyhow::Result<u32> {
    let status =
        fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .context("no Uid line in /proc/self/status")
}

fn lookup_user(name: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no user '{name}' in /etc/passwd"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
