//! A PostgreSQL cluster of boxoffice's own, for when no DATABASE_URL is given: the
//! server (and the test harness) create it on first use and reuse it afterwards.
//!
//! The cluster has no TCP listener. It listens on a Unix socket in a directory only
//! the account running PostgreSQL can enter ([`socket`]), and trusts the connections
//! that arrive there: no other local account can connect. One boxoffice server at a
//! time uses a data directory ([`claim`]). `initdb` refuses to run as root, so a root
//! process runs the PostgreSQL tools as the `postgres` account ([`tools`]).

mod claim;
mod socket;
mod tools;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// The superuser that `initdb` creates, trusted on the private Unix socket.
pub const SUPERUSER: &str = "postgres";

/// Everything in `postgresql.conf` from this line on is boxoffice's, rewritten at
/// every start (versions before the Unix socket wrote TCP settings under it).
const CONF_MARK: &str = "# added by boxoffice";

/// A running local cluster, owned by this process while it holds the lock on
/// `DATA_DIR` (the lock goes with the process, however it ends). Stop it with
/// [`LocalCluster::stop`] (blocking: call it off the async runtime).
#[derive(Debug)]
pub struct LocalCluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    /// The uid PostgreSQL runs as (ours, or the `postgres` account's when we are root).
    account: u32,
    /// Set when we are root: the `postgres` account's uid and gid.
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
        let bin_dir = tools::find_bin_dir(pg_bin)?;
        let uid = tools::effective_uid()?;
        let run_as = if uid == 0 {
            Some(tools::lookup_user(SUPERUSER).context(
                "running as root, so PostgreSQL must run as an unprivileged account, \
                 but there is no 'postgres' user; create one or run boxoffice as a normal user",
            )?)
        } else {
            None
        };
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let lock = claim::lock(&data_dir)?;
        let mut cluster = LocalCluster {
            socket_dir: socket::dir_for(&data_dir),
            data_dir,
            bin_dir,
            port: 0,
            account: run_as.map_or(uid, |(uid, _)| uid),
            run_as,
            stopped: false,
            started_here: true,
            _lock: lock,
        };

        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        if cluster.pg_ctl(&["status"])?.status.success() {
            cluster.adopt()?;
        } else {
            cluster.start_server(free_port()?)?;
        }
        claim::record_owner(&cluster.data_dir)?;
        cluster.port = cluster.read_port()?;
        Ok(cluster)
    }

    /// Uses a server that was running before we came: a crash of ours left it, or
    /// someone started it by hand. It is left running at exit. Refused while the
    /// boxoffice process that started it lives, or when it listens other than on
    /// our private socket (a server started by a version that listened on TCP).
    fn adopt(&mut self) -> anyhow::Result<()> {
        // Before anything can fail: dropping `self` must not stop it.
        self.started_here = false;
        let postmaster = self.pid()?;
        claim::check_adoptable(&self.data_dir, postmaster)?;
        // postmaster.pid's fifth and sixth lines: the first socket directory and the
        // first listen address.
        let socket_dir = self.pid_file_line(4)?;
        let listening = self.pid_file_line(5)?;
        if Path::new(&socket_dir) != self.socket_dir || !listening.is_empty() {
            bail!(
                "a PostgreSQL server (process {postmaster}) is already running in {} with other \
                 connection settings (socket directory '{socket_dir}', TCP address '{listening}'), \
                 perhaps started by an older boxoffice; stop it (pg_ctl stop -D {0}) and start again",
                self.data_dir.display()
            );
        }
        tracing::warn!(data_dir = %self.data_dir.display(), "using a PostgreSQL server that was already running; it will be left running");
        Ok(())
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
        socket::prepare(&self.socket_dir, &self.data_dir, self.account, self.run_as)?;
        self.configure()?;
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

    /// Writes boxoffice's settings at the end of `postgresql.conf`: no TCP listener,
    /// the private socket directory, room for a few instances' pools.
    fn configure(&self) -> anyhow::Result<()> {
        let conf = self.data_dir.join("postgresql.conf");
        let text = fs::read_to_string(&conf).context("cannot read postgresql.conf")?;
        let theirs = text.find(CONF_MARK).map_or(text.as_str(), |at| &text[..at]);
        let wanted = format!(
            "{}\n\n{CONF_MARK} (rewritten at every start; put your own settings above)\n\
             listen_addresses = ''\n\
             unix_socket_directories = {}\n\
             unix_socket_permissions = 0700\n\
             max_connections = 300\n",
            theirs.trim_end(),
            socket::conf_value(&self.socket_dir)
        );
        if wanted != text {
            fs::write(&conf, wanted).context("cannot write postgresql.conf")?;
        }
        Ok(())
    }

    /// The port, which names the socket (`.s.PGSQL.<port>`); nothing listens on TCP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the cluster's Unix socket (mode 0700).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
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

    /// A connection URL for `database` on this cluster, through its socket
    /// (`postgres://postgres@%2Fpath%2Fto%2Fsocket:port/database`, which sqlx and
    /// psql both read).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@{}:{}/{database}",
            socket::url_host(&self.socket_dir),
            self.port
        )
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
        socket::tidy(&self.socket_dir, &self.data_dir);
        Ok(())
    }

    fn init(&self) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            tools::ensure_reachable(&self.data_dir, uid)?;
            std::os::unix::fs::chown(&self.data_dir, Some(uid), Some(gid))
                .context("cannot hand the data directory to the postgres account")?;
        }
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))?;
        let data = self.data_dir.to_string_lossy();
        // Trust on the socket, which only the cluster's account can reach; TCP is
        // off (see `configure`), and refused by pg_hba.conf should anyone turn it on.
        let out = self
            .command("initdb")
            .args([
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=reject",
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

    /// `postmaster.pid` holds, one per line: pid, data directory, start time, port,
    /// first socket directory, first listen address, ...
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

/// A port nobody uses on TCP: it names the socket, and keeps `port()` unique on the
/// machine, so that a probe of 127.0.0.1 there finds nothing of ours either.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
