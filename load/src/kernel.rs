//! The kernel's TCP counters that explain an arrival storm's tail: SYNs dropped
//! because a listen queue was full, and SYNs the clients had to send again (a
//! dropped SYN is retried only after 1, 3, 7 s). Read from `/proc/net/netstat`,
//! which counts for the whole network namespace: run nothing else meanwhile.

use serde_json::{Map, Value, json};

const COUNTERS: [(&str, &str); 3] = [
    ("ListenOverflows", "listen_overflows"),
    ("ListenDrops", "listen_drops"),
    ("TCPSynRetrans", "syn_retransmits"),
];

/// The counters now (empty where the kernel does not say).
pub fn tcp() -> Vec<(String, u64)> {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Vec::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// What the counters grew by since `before`, named for the report.
pub fn grown(before: &[(String, u64)]) -> Value {
    let after = tcp();
    let read =
        |set: &[(String, u64)], name: &str| set.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut out = Map::new();
    for (kernel, report) in COUNTERS {
        if let (Some(a), Some(b)) = (read(before, kernel), read(&after, kernel)) {
            out.insert(report.into(), json!(b.saturating_sub(a)));
        }
    }
    Value::Object(out)
}
