//! B4, the arrival storm: `sessions` screens open one show within `spread_ms`, and
//! each waits for its whole first snapshot (all parts). Reports the time each took
//! from its own start to its last part, and the server's peak memory.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::{Target, next_text};
use crate::stats::{self, Latencies};

/// Just enough of a snapshot frame to know when it is complete; everything else
/// (the seats) is skipped by serde, not parsed, so the load tool stays cheap.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    part: u32,
    #[serde(default)]
    parts: u32,
}

pub async fn run(
    t: &Target,
    sessions: usize,
    seats: u32,
    state: bool,
    spread_ms: u64,
    server_pid: Option<u32>,
) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(seats).await?;
    let counters = crate::kernel::tcp();
    let query = if state { "?snapshot=state" } else { "" };
    let start = Instant::now() + Duration::from_millis(200);
    let step = Duration::from_micros(spread_ms * 1000 / sessions.max(1) as u64);
    let opened = (0..sessions).map(|i| async move {
        tokio::time::sleep_until((start + step * i as u32).into()).await;
        let began = Instant::now();
        let mut ws = t.connect_with(show, query).await?;
        let (mut bytes, mut seen) = (0usize, 0u32);
        loop {
            let text = next_text(&mut ws).await?;
            bytes += text.len();
            let head: Head = serde_json::from_str(&text)?;
            if head.kind == "snapshot" || head.kind == "state" {
                seen += 1;
                if head.part >= head.parts {
                    break;
                }
            }
        }
        anyhow::Ok((began.elapsed(), bytes, seen, ws))
    });
    let results = join_all(opened).await;
    let total = start.elapsed();
    let (mut lat, mut bytes, mut complete, mut failed) =
        (Latencies::default(), 0usize, 0usize, 0usize);
    let mut open = Vec::new();
    for r in results {
        match r {
            Ok((took, b, _, ws)) => {
                lat.record(took);
                bytes += b;
                complete += 1;
                open.push(ws);
            }
            Err(_) => failed += 1,
        }
    }
    let mut r = Map::new();
    r.insert("sessions".into(), json!(sessions));
    r.insert("seats".into(), json!(seats));
    r.insert("view".into(), json!(if state { "state" } else { "full" }));
    r.insert("complete_snapshots".into(), json!(complete));
    r.insert("failed".into(), json!(failed));
    r.insert("time_to_full_snapshot".into(), lat.summary());
    r.insert("all_done_seconds".into(), stats::seconds(total));
    r.insert("kernel".into(), crate::kernel::grown(&counters));
    r.insert("snapshot_mb".into(), json!((bytes as f64 / 1e6).round()));
    if let Some(pid) = server_pid {
        r.insert("server_peak_rss_mib".into(), json!(peak_mib(pid)?));
    }
    drop(open);
    Ok(r)
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_mib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(kib / 1024)
}
