//! B4, the arrival storm: `sessions` screens open one show within `spread_ms`, and
//! each waits for its whole first snapshot (all parts). Reports the time each took
//! from its own start to its last part, and the server's peak memory. With
//! `leaving`, as many sessions opened beforehand leave during the same window.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::{Target, Ws, next_text};
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

/// What a storm is made of.
pub struct Storm {
    pub sessions: usize,
    pub seats: u32,
    /// Compact `state` frames instead of full snapshots.
    pub state: bool,
    /// Those in runs.
    pub runs: bool,
    /// The window the arrivals (and departures) are spread over.
    pub spread: Duration,
    /// Sessions already open that leave during the storm.
    pub leaving: usize,
    pub server_pid: Option<u32>,
}

pub async fn run(t: &Target, storm: &Storm) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(storm.seats).await?;
    let query = match (storm.state, storm.runs) {
        (true, true) => "?snapshot=state&runs=true",
        (true, false) => "?snapshot=state",
        _ => "",
    };
    let settled = join_all((0..storm.leaving).map(|_| open(t, show, query))).await;
    let leavers: Vec<_> = settled
        .into_iter()
        .filter_map(Result::ok)
        .map(|(_, _, ws)| ws)
        .collect();
    let stayed = leavers.len();
    let counters = crate::kernel::tcp();
    let start = Instant::now() + Duration::from_millis(200);
    let every = |n: usize| storm.spread / n.max(1) as u32;
    let leave = leavers
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| async move {
            tokio::time::sleep_until((start + every(storm.leaving) * i as u32).into()).await;
            let _ = ws.close(None).await;
        });
    let opened = (0..storm.sessions).map(|i| async move {
        tokio::time::sleep_until((start + every(storm.sessions) * i as u32).into()).await;
        open(t, show, query).await
    });
    let (results, _) = tokio::join!(join_all(opened), join_all(leave));
    let total = start.elapsed();
    let (mut lat, mut bytes, mut complete, mut failed) =
        (Latencies::default(), 0usize, 0usize, 0usize);
    let mut open = Vec::new();
    for r in results {
        match r {
            Ok((took, b, ws)) => {
                lat.record(took);
                bytes += b;
                complete += 1;
                open.push(ws);
            }
            Err(_) => failed += 1,
        }
    }
    let mut r = Map::new();
    r.insert("sessions".into(), json!(storm.sessions));
    r.insert("seats".into(), json!(storm.seats));
    r.insert(
        "view".into(),
        json!(match (storm.state, storm.runs) {
            (true, true) => "state-runs",
            (true, false) => "state",
            _ => "full",
        }),
    );
    r.insert("leaving".into(), json!(stayed));
    r.insert("complete_snapshots".into(), json!(complete));
    r.insert("failed".into(), json!(failed));
    r.insert("time_to_full_snapshot".into(), lat.summary());
    r.insert("all_done_seconds".into(), stats::seconds(total));
    r.insert("kernel".into(), crate::kernel::grown(&counters));
    r.insert("snapshot_mb".into(), json!((bytes as f64 / 1e6).round()));
    if let Some(pid) = storm.server_pid {
        r.insert("server_peak_rss_mib".into(), json!(peak_mib(pid)?));
    }
    drop(open);
    Ok(r)
}

/// Opens a session and reads its whole first snapshot: how long that took from
/// here, and how many bytes it was.
async fn open(t: &Target, show: i64, query: &str) -> anyhow::Result<(Duration, usize, Ws)> {
    let began = Instant::now();
    let mut ws = t.connect_with(show, query).await?;
    let mut bytes = 0usize;
    loop {
        let text = next_text(&mut ws).await?;
        bytes += text.len();
        let head: Head = serde_json::from_str(&text)?;
        if (head.kind == "snapshot" || head.kind == "state") && head.part >= head.parts {
            return Ok((began.elapsed(), bytes, ws));
        }
    }
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
