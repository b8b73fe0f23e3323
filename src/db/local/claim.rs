//! One boxoffice server per data directory.
//!
//! The lock is an exclusive `flock` on the data directory itself. It goes with the
//! process however it ends, and nothing short of deleting the cluster removes it. (It
//! used to be a file beside the directory, `DATA_DIR.lock`: once a tmp cleaner
//! deleted that, a second server took a fresh lock and adopted the first one's
//! running cluster.)
//!
//! The server using the cluster also writes its pid and start time to
//! `boxoffice.pid` in the directory. That names the holder when the lock is taken,
//! and tells a server that finds PostgreSQL already running whether the boxoffice
//! process that started it is still alive.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The file in the data directory that names the boxoffice process using it.
const OWNER_FILE: &str = "boxoffice.pid";

/// Takes the lock that makes this process the only boxoffice server using
/// `data_dir`. Held until the returned handle is dropped.
pub(super) fn lock(data_dir: &Path) -> anyhow::Result<fs::File> {
    // A directory opens read-only, and flock works on it like on a file.
    let dir = fs::File::open(data_dir)
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    match dir.try_lock() {
        Ok(()) => Ok(dir),
        Err(fs::TryLockError::WouldBlock) => {
            let holder =
                Owner::read(data_dir).map_or(String::new(), |o| format!(" (process {})", o.pid));
            bail!(
                "DATA_DIR {} is in use by another boxoffice server{holder}; stop it, or set DATA_DIR or DATABASE_URL",
                data_dir.display()
            )
        }
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", data_dir.display()))
        }
    }
}

/// Refuses a PostgreSQL server found running in `data_dir` if the boxoffice process
/// that started it is alive and is not this one. One that is gone (a crash of
/// ours) or unknown (a server started by hand) leaves a server that may be used.
pub(super) fn check_adoptable(data_dir: &Path, postmaster: u32) -> anyhow::Result<()> {
    let me = Owner::me()?;
    if let Some(owner) = Owner::read(data_dir)
        && owner != me
        && owner.is_alive()
    {
        bail!(
            "DATA_DIR {} is in use: its PostgreSQL server (process {postmaster}) belongs to \
             boxoffice process {}, which is still running; stop it, or set DATA_DIR or DATABASE_URL",
            data_dir.display(),
            owner.pid
        );
    }
    Ok(())
}

/// Records this process as the one using the cluster in `data_dir`.
pub(super) fn record_owner(data_dir: &Path) -> anyhow::Result<()> {
    let me = Owner::me()?;
    let path = owner_path(data_dir);
    fs::write(&path, format!("{} {}\n", me.pid, me.started))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn owner_path(data_dir: &Path) -> PathBuf {
    data_dir.join(OWNER_FILE)
}

/// A process, told apart from a later one that reuses its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// Clock ticks after boot, from `/proc/<pid>/stat`.
    started: u64,
}

impl Owner {
    fn me() -> anyhow::Result<Owner> {
        let pid = std::process::id();
        let started = start_time(pid).context("cannot read this process's start time")?;
        Ok(Owner { pid, started })
    }

    fn read(data_dir: &Path) -> Option<Owner> {
        let text = fs::read_to_string(owner_path(data_dir)).ok()?;
        let mut fields = text.split_whitespace();
        Some(Owner {
            pid: fields.next()?.parse().ok()?,
            started: fields.next()?.parse().ok()?,
        })
    }

    fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }
}

/// Field 22 of `/proc/<pid>/stat`; `None` when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("boxoffice-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = scratch("claim-lock");
        let first = lock(&dir).unwrap();
        record_owner(&dir).unwrap();
        let err = lock(&dir).expect_err("already locked");
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        // Another test of this process may be forking a child at this instant:
        // until the child execs, it holds a copy of the lock's descriptor.
        let again = (0..50).find_map(|_| {
            lock(&dir)
                .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                .ok()
        });
        drop(again.expect("free again"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_started_by_a_live_process_is_not_adopted_and_one_left_by_a_dead_one_is() {
        let dir = scratch("claim-adopt");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let started = start_time(child.id()).unwrap();
        let write = |owner: Owner| {
            fs::write(
                owner_path(&dir),
                format!("{} {}\n", owner.pid, owner.started),
            )
            .unwrap()
        };

        write(Owner {
            pid: child.id(),
            started,
        });
        let err = check_adoptable(&dir, 4242).expect_err("its owner lives");
        assert!(
            err.to_string()
                .contains(&format!("boxoffice process {}", child.id())),
            "{err}"
        );
        // The same pid with another start time is a different process.
        write(Owner {
            pid: child.id(),
            started: started + 1,
        });
        check_adoptable(&dir, 4242).expect("a reused pid is not the owner");
        // This process may use what it started itself.
        record_owner(&dir).unwrap();
        check_adoptable(&dir, 4242).expect("ours");

        write(Owner {
            pid: child.id(),
            started,
        });
        child.kill().unwrap();
        child.wait().unwrap();
        check_adoptable(&dir, 4242).expect("its owner is gone");
        fs::remove_file(owner_path(&dir)).unwrap();
        check_adoptable(&dir, 4242).expect("no owner recorded");
        fs::remove_dir_all(&dir).unwrap();
    }
}
