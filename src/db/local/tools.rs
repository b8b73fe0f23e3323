//! Finding the PostgreSQL tools, and the account that runs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const MISSING_BINARIES: &str = "PostgreSQL server binaries (initdb, pg_ctl) were not found. \
Install PostgreSQL 15 or newer (Debian/Ubuntu: apt-get install postgresql), or set PG_BIN to \
their directory, or point DATABASE_URL at an existing server, or run `docker compose up`.";

/// Running as root, the server runs as `uid`, which must be able to walk down to the
/// data directory: a checkout under /root (mode 700) is the usual trap.
pub(super) fn ensure_reachable(data_dir: &Path, uid: u32) -> anyhow::Result<()> {
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
pub(super) fn find_bin_dir(pg_bin: Option<&Path>) -> anyhow::Result<PathBuf> {
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
pub(super) fn effective_uid() -> anyhow::Result<u32> {
    let status =
        fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .context("no Uid line in /proc/self/status")
}

pub(super) fn lookup_user(name: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no user '{name}' in /etc/passwd"))
}
