//! CPU time of the server and of the load tool itself over a timed window, from
//! /proc: on one machine every cycle the load tool spends is taken from the server
//! and the database, so each scenario that measures throughput reports both.

use anyhow::Context;
use serde_json::{Map, Value, json};

/// CPU seconds of the server (when its pid is known) and of this process at the
/// window's start.
pub struct Window {
    server_pid: Option<u32>,
    server: Option<f64>,
    own: f64,
}

impl Window {
    pub fn start(server_pid: Option<u32>) -> anyhow::Result<Window> {
        Ok(Window {
            server_pid,
            server: server_pid.map(seconds).transpose()?,
            own: seconds_self()?,
        })
    }

    /// Ends the window: the CPU seconds each process spent in it.
    pub fn stop(self) -> anyhow::Result<Spent> {
        let server = match (self.server_pid, self.server) {
            (Some(pid), Some(before)) => Some(seconds(pid)? - before),
            _ => None,
        };
        Ok(Spent {
            server,
            own: seconds_self()? - self.own,
        })
    }
}

/// CPU seconds spent in a window.
pub struct Spent {
    server: Option<f64>,
    own: f64,
}

impl Spent {
    /// Adds `server_cpu_us_per_<unit>` (when the server's pid was given) and
    /// `load_cpu_us_per_<unit>` to `r`: the window's CPU time divided by `count`.
    pub fn report(&self, count: u64, unit: &str, r: &mut Map<String, Value>) {
        let per = |seconds: f64| (seconds * 1e6 / count.max(1) as f64 * 10.0).round() / 10.0;
        if let Some(server) = self.server {
            r.insert(format!("server_cpu_us_per_{unit}"), json!(per(server)));
        }
        r.insert(format!("load_cpu_us_per_{unit}"), json!(per(self.own)));
    }
}

/// A process's CPU time (user + system), in seconds.
fn seconds(pid: u32) -> anyhow::Result<f64> {
    from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

fn seconds_self() -> anyhow::Result<f64> {
    from_stat(&std::fs::read_to_string("/proc/self/stat")?)
}

/// Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ, 100 on Linux).
fn from_stat(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) may hold spaces; count fields after its ')'.
    let rest = stat.rsplit_once(')').context("no ')' in /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
