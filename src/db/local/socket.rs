//! The cluster's Unix socket: its only way in.
//!
//! The socket lives in `socket/` inside the data directory, a directory of mode 0700
//! owned by the account that runs PostgreSQL: no other local account can reach it
//! (the socket itself is 0700 too), so trusting the connections that arrive there
//! trusts only that account and root. A socket path holds at most 107 bytes; when
//! the data directory's path is too long for that (or has characters a
//! `postgresql.conf` list cannot hold), the socket goes to a private directory
//! `/tmp/boxoffice-<hash of the data directory's path>` instead.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// `/.s.PGSQL.` and a port of up to five digits, which PostgreSQL adds to the directory.
const SOCKET_NAME_MAX: usize = "/.s.PGSQL.65535".len();

/// Where the socket of the cluster in `data_dir` lives.
pub(super) fn dir_for(data_dir: &Path) -> PathBuf {
    let inside = data_dir.join("socket");
    if fits(&inside) {
        inside
    } else {
        fallback(data_dir)
    }
}

/// Whether `dir` can be a socket directory as it is spelt.
fn fits(dir: &Path) -> bool {
    // postgresql.conf quotes the value and splits it at commas; keep to paths that
    // need no escaping there.
    dir.to_str().is_some_and(|s| {
        s.len() + SOCKET_NAME_MAX <= MAX_SOCKET_PATH
            && !s.contains([',', '\'', '"', '\\'])
            && !s.contains(char::is_control)
    })
}

/// A short directory of the data directory's own: the same path on every start.
fn fallback(data_dir: &Path) -> PathBuf {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    PathBuf::from(format!("/tmp/boxoffice-{hash:016x}"))
}

/// Creates `dir` (if needed) private to `owner`, the account that runs PostgreSQL;
/// `chown_to` is set when that is not this process's account.
pub(super) fn prepare(
    dir: &Path,
    data_dir: &Path,
    owner: u32,
    chown_to: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let created = match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the socket directory {}", dir.display()));
        }
    };
    // Inside the data directory everything is ours. In /tmp another account may
    // have made the directory first: then it is not ours to take over.
    if let Some((uid, gid)) = chown_to
        && (created || dir.starts_with(data_dir))
    {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .with_context(|| format!("cannot hand {} to the postgres account", dir.display()))?;
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != owner {
        bail!(
            "the socket directory {} is not a directory of the account that runs PostgreSQL \
             (uid {owner}); remove it, or set a shorter DATA_DIR",
            dir.display()
        );
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))
}

/// Removes a directory of ours in /tmp once the server is gone (PostgreSQL removes
/// its socket files when it stops). The one in the data directory stays.
pub(super) fn tidy(dir: &Path, data_dir: &Path) {
    if !dir.starts_with(data_dir) {
        let _ = fs::remove_dir(dir);
    }
}

/// `dir` as the host part of a URL: a host that starts with `/` (encoded `%2F`)
/// names a socket directory to both sqlx and libpq.
pub(super) fn url_host(dir: &Path) -> String {
    dir.as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The setting's value in `postgresql.conf` syntax (quoted; [`dir_for`] only
/// chooses paths that need no escaping).
pub(super) fn conf_value(dir: &Path) -> String {
    format!("'{}'", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_data_directory_keeps_its_socket_inside() {
        let data = Path::new("/var/tmp/boxoffice/data");
        assert_eq!(dir_for(data), data.join("socket"));
    }

    #[test]
    fn a_long_or_odd_data_directory_puts_its_socket_in_a_short_private_directory() {
        let long = PathBuf::from(format!("/var/tmp/{}/data", "d".repeat(90)));
        let odd = Path::new("/var/tmp/a,b/data");
        for data in [long.as_path(), odd] {
            let dir = dir_for(data);
            assert!(dir.starts_with("/tmp"), "{}", dir.display());
            assert!(fits(&dir));
            assert_eq!(dir, dir_for(data), "the same directory on every start");
        }
        assert_ne!(dir_for(&long), dir_for(odd));
    }

    #[test]
    fn the_url_names_the_socket_directory_for_sqlx() {
        use sqlx::postgres::PgConnectOptions;
        let dir = Path::new("/srv/Box Office/data-1/socket");
        let url = format!("postgres://postgres@{}:6543/db", url_host(dir));
        let options: PgConnectOptions = url.parse().unwrap();
        assert_eq!(options.get_socket().map(PathBuf::as_path), Some(dir));
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("db"));
    }

    #[test]
    fn a_socket_directory_in_tmp_made_by_another_account_is_refused() {
        let data = std::env::temp_dir().join(format!("boxoffice-sock-{}", std::process::id()));
        let dir = data.with_extension("sock");
        fs::create_dir_all(&data).unwrap();
        fs::create_dir_all(&dir).unwrap();
        let me = fs::metadata(&dir).unwrap().uid();
        let err = prepare(&dir, &data, me + 1, None).expect_err("not the owner's");
        assert!(err.to_string().contains("remove it"), "{err}");
        prepare(&dir, &data, me, None).expect("ours");
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(&data).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
