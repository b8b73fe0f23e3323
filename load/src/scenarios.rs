//! The scenarios. Each creates its own show, drives sessions, and returns a report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::Scenario;
use crate::client::{Frame, SeatMap, Target, Ws, next_text, read_until_stopped, send_json};
use crate::stats::{self, Latencies};

pub async fn run(
    t: &Target,
    scenario: Scenario,
) -> anyhow::Result<(&'static str, Map<String, Value>)> {
    Ok(match scenario {
        Scenario::FlashSale {
            bookers,
            watchers,
            seats_per_booking,
            seconds,
            seats,
            distinct_buyers,
            server_pid,
        } => (
            "flash-sale",
            flash_sale(
                t,
                Sale {
                    bookers,
                    watchers,
                    per_booking: seats_per_booking,
                    seconds,
                    seats,
                    distinct_buyers,
                },
                server_pid,
            )
            .await?,
        ),
        Scenario::RestFlashSale {
            connections,
            seats,
            seats_per_booking,
            seconds,
            server_pid,
        } => (
            "rest-flash-sale",
            crate::rest::run(
                t,
                connections,
                seats,
                seats_per_booking,
                seconds,
                server_pid,
            )
            .await?,
        ),
        Scenario::OnSale {
            buyers,
            seats,
            admit_per_minute,
            max_active,
            gather_secs,
            after_secs,
        } => {
            let sale = crate::onsale::OnSale {
                buyers,
                seats,
                admit_per_minute,
                max_active,
                gather: Duration::from_secs(gather_secs),
                after: Duration::from_secs(after_secs),
            };
            ("on-sale", crate::onsale::run(t, &sale).await?)
        }
        Scenario::ArrivalStorm {
            sessions,
            seats,
            state,
            runs,
            spread_ms,
            leaving,
            server_pid,
        } => {
            let storm = crate::storm::Storm {
                sessions,
                seats,
                state,
                runs,
                spread: Duration::from_millis(spread_ms),
                leaving,
                server_pid,
            };
            ("arrival-storm", crate::storm::run(t, &storm).await?)
        }
        Scenario::ReconnectStorm {
            watchers,
            seats,
            state,
            resume,
            wait_secs,
        } => (
            "reconnect-storm",
            crate::reconnect::run(t, watchers, seats, state, resume, wait_secs).await?,
        ),
        Scenario::HotSeat { clients } => ("hot-seat", hot_seat(t, clients).await?),
        Scenario::Fanout {
            watchers,
            rate,
            seconds,
            server_pid,
        } => (
            "fanout",
            fanout(t, watchers, rate, seconds, server_pid).await?,
        ),
        Scenario::BestAvailable {
            seats,
            count,
            clients,
            requests,
            sold_percent,
        } => (
            "best-available",
            crate::best::run(t, seats, count, clients, requests, sold_percent).await?,
        ),
        Scenario::Idle {
            sessions,
            server_pid,
            broadcast,
        } => ("idle", idle(t, sessions, server_pid, broadcast).await?),
    })
}

/// A session and the seat map it keeps.
struct Session {
    ws: Ws,
    map: SeatMap,
}

/// Opens a session and applies its first snapshot, so that measuring starts after.
async fn open(t: &Target, show: i64) -> anyhow::Result<Session> {
    let mut ws = t.connect(show).await?;
    let mut map = SeatMap::default();
    loop {
        let text = next_text(&mut ws).await?;
        let frame: Frame = serde_json::from_str(&text)?;
        map.apply(&frame);
        if frame.kind == "snapshot" && frame.part >= frame.parts {
            return Ok(Session { ws, map });
        }
    }
}

/// Opens `n` sessions, 200 at a time.
async fn connect_many(t: &Target, show: i64, n: usize) -> anyhow::Result<Vec<Session>> {
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let batch = (n - all.len()).min(200);
        for s in join_all((0..batch).map(|_| open(t, show))).await {
            all.push(s.context("opening a session")?);
        }
    }
    Ok(all)
}

/// Sends a command and waits for its reply, applying other frames to the map.
/// Returns the reply's type and error code.
async fn request(s: &mut Session, command: Value) -> anyhow::Result<(String, Option<String>)> {
    request_with(s, command, true).await
}

/// `request`, optionally ignoring the changes that arrive meanwhile: a booker whose
/// map nobody checks need not parse every change (64 bookers parsing every frame
/// cost the load tool a sixth of its CPU in the flash sale).
async fn request_with(
    s: &mut Session,
    command: Value,
    track_changes: bool,
) -> anyhow::Result<(String, Option<String>)> {
    let id = command["request_id"].clone();
    send_json(&mut s.ws, &command).await?;
    loop {
        let text = next_text(&mut s.ws).await?;
        // The server writes `type` first, so a change is known by its first bytes.
        if !track_changes && text.as_str().starts_with(r#"{"type":"seats_changed""#) {
            continue;
        }
        let frame: Frame = serde_json::from_str(&text)?;
        if frame.kind != "seats_changed"
            && frame.kind != "snapshot"
            && frame.request_id.as_ref() == Some(&id)
        {
            return Ok((frame.kind.to_string(), frame.code.map(str::to_string)));
        }
        s.map.apply(&frame);
    }
}

/// Reads frames until `stop` is set and then nothing arrives for `quiet`, then
/// applies them all. Returns the map and how many snapshots arrived after the first
/// (resyncs). The frames are read as they come (the server's work is the same) but
/// parsed after the clock stops: parsing them live took a quarter of the load tool's
/// CPU from the two cores the server and the database share.
async fn watch_until(
    mut s: Session,
    stop: tokio::sync::watch::Receiver<bool>,
    quiet: Duration,
) -> (SeatMap, usize) {
    let mut frames = Vec::new();
    read_until_stopped(&mut s.ws, stop, quiet, |text| frames.push(text)).await;
    let resyncs = frames
        .iter()
        .map(|text| apply_frame(&mut s.map, text.as_str()))
        .sum();
    (s.map, resyncs)
}

/// Applies a frame to a watcher's map; 1 if it began a resync snapshot.
fn apply_frame(map: &mut SeatMap, text: &str) -> usize {
    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
        return 0;
    };
    map.apply(&frame);
    usize::from(frame.kind == "snapshot" && frame.part <= 1)
}

/// The flash sale's shape (B1, T1).
struct Sale {
    bookers: usize,
    watchers: usize,
    per_booking: usize,
    seconds: u64,
    seats: u32,
    distinct_buyers: bool,
}

async fn flash_sale(
    t: &Target,
    sale: Sale,
    server_pid: Option<u32>,
) -> anyhow::Result<Map<String, Value>> {
    let Sale {
        bookers,
        watchers,
        per_booking,
        seconds,
        seats,
        distinct_buyers,
    } = sale;
    let show = t.create_show(seats).await?;
    let (stop_all, stop) = tokio::sync::watch::channel(false);
    let watcher_tasks: Vec<_> = connect_many(t, show, watchers)
        .await?
        .into_iter()
        .map(|s| tokio::spawn(watch_until(s, stop.clone(), Duration::from_secs(1))))
        .collect();
    let mut booker_sessions = connect_many(t, show, bookers).await?;
    for (b, session) in booker_sessions.iter_mut().enumerate() {
        if let Some(token) = t.token_for(&format!("booker{b}"))? {
            let (kind, code) = request(
                session,
                json!({"type": "auth", "request_id": "auth", "token": token}),
            )
            .await?;
            anyhow::ensure!(
                kind == "authenticated",
                "signing booker {b} in failed: {code:?}"
            );
        }
    }

    let next_seat = Arc::new(AtomicU32::new(1));
    let (go, ready) = watch::channel(false);
    let deadline = Duration::from_secs(seconds);
    let tasks: Vec<_> = booker_sessions
        .into_iter()
        .enumerate()
        .map(|(b, mut session)| {
            let (next_seat, mut ready) = (next_seat.clone(), ready.clone());
            tokio::spawn(async move {
                let _ = ready.wait_for(|g| *g).await;
                let start = Instant::now();
                let (mut lat, mut ok, mut refused) = (Latencies::default(), 0u64, 0u64);
                let mut i = 0;
                while start.elapsed() < deadline {
                    let first = next_seat.fetch_add(per_booking as u32, Ordering::Relaxed);
                    if first + per_booking as u32 - 1 > seats {
                        break;
                    }
                    let seat_nos: Vec<String> = (first..first + per_booking as u32).map(|n| n.to_string()).collect();
                    i += 1;
                    let buyer = if distinct_buyers { format!("booker{b}-{i}") } else { format!("booker{b}") };
                    let cmd = json!({"type": "book", "request_id": format!("b{b}-{i}"), "seat_nos": seat_nos, "user_id": buyer});
                    let sent = Instant::now();
                    let (kind, _) = request_with(&mut session, cmd, false).await?;
                    lat.record(sent.elapsed());
                    if kind == "booked" { ok += 1 } else { refused += 1 }
                }
                anyhow::Ok((lat, ok, refused, start.elapsed()))
            })
        })
        .collect();
    let cpu = crate::cpu::Window::start(server_pid)?;
    let _ = go.send(true);
    let (mut lat, mut ok, mut refused, mut elapsed) = (Latencies::default(), 0, 0, Duration::ZERO);
    for task in tasks {
        let (l, o, r, e) = task.await??;
        lat.extend(l);
        ok += o;
        refused += r;
        elapsed = elapsed.max(e);
    }
    let spent = cpu.stop()?;
    let _ = stop_all.send(true);
    let truth = t.rest_seats(show).await?;
    let (mut consistent, mut resyncs) = (0, 0);
    for task in watcher_tasks {
        let (map, n) = task.await?;
        consistent += usize::from(map.equals(&truth));
        resyncs += n;
    }
    let rate = ok as f64 / elapsed.as_secs_f64();
    let mut r = Map::new();
    r.insert("bookings_ok".into(), json!(ok));
    r.insert("bookings_refused".into(), json!(refused));
    r.insert(
        "bookings_per_sec".into(),
        json!((rate * 10.0).round() / 10.0),
    );
    r.insert("seconds".into(), stats::seconds(elapsed));
    r.insert("booking_latency".into(), lat.summary());
    r.insert(
        "watchers_consistent".into(),
        json!(format!("{consistent}/{watchers}")),
    );
    r.insert("watcher_resyncs".into(), json!(resyncs));
    spent.report(ok, "booking", &mut r);
    Ok(r)
}

async fn hot_seat(t: &Target, clients: usize) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(10).await?;
    let sessions = connect_many(t, show, clients).await?;
    let (go, ready) = watch::channel(None::<Instant>);
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, mut session)| {
            let mut ready = ready.clone();
            tokio::spawn(async move {
                let start = ready.wait_for(|g| g.is_some()).await.ok().and_then(|g| *g).unwrap_or_else(Instant::now);
                let cmd = json!({"type": "book", "request_id": i, "seat_nos": ["1", "2"], "user_id": format!("fan{i}")});
                let reply = request(&mut session, cmd).await?;
                anyhow::Ok((start.elapsed(), reply))
            })
        })
        .collect();
    let _ = go.send(Some(Instant::now()));
    let (mut lat, mut won, mut unavailable, mut other) = (Latencies::default(), 0, 0, 0);
    for task in tasks {
        let (took, reply) = task.await??;
        lat.record(took);
        match (reply.0.as_str(), reply.1.as_deref()) {
            ("booked", _) => won += 1,
            (_, Some("SEATS_UNAVAILABLE")) => unavailable += 1,
            _ => other += 1,
        }
    }
    let mut r = Map::new();
    r.insert("clients".into(), json!(clients));
    r.insert("answered".into(), json!(lat.len()));
    r.insert("winners".into(), json!(won));
    r.insert("seats_unavailable".into(), json!(unavailable));
    r.insert("other_replies".into(), json!(other));
    r.insert("time_to_answer".into(), lat.summary());
    Ok(r)
}

async fn fanout(
    t: &Target,
    watchers: usize,
    rate: u32,
    seconds: u64,
    server_pid: Option<u32>,
) -> anyhow::Result<Map<String, Value>> {
    let changes = (rate as u64 * seconds) as u32;
    let show = t.create_show(changes + 10).await?;
    let (stop_all, stop) = tokio::sync::watch::channel(false);
    let origin = Instant::now();
    // Each watcher notes when each seat's BOOKED change reached it.
    let watcher_tasks: Vec<_> = connect_many(t, show, watchers)
        .await?
        .into_iter()
        .map(|mut session| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut seen, mut resyncs) = (Vec::new(), 0u32);
                let mut note = |text: &str| {
                    let at = origin.elapsed();
                    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
                        return;
                    };
                    match frame.kind {
                        "seats_changed" => seen.extend(
                            frame
                                .seats
                                .iter()
                                .filter_map(|s| s.seat_no.parse::<u32>().ok())
                                .map(|n| (n, at)),
                        ),
                        "snapshot" if frame.part <= 1 => resyncs += 1,
                        _ => {}
                    }
                };
                let quiet = Duration::from_millis(500);
                read_until_stopped(&mut session.ws, stop, quiet, |text| note(text.as_str())).await;
                (seen, resyncs)
            })
        })
        .collect();

    let mut booker = open(t, show).await?;
    let cpu = crate::cpu::Window::start(server_pid)?;
    let mut committed = vec![Duration::MAX; changes as usize + 1];
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for n in 1..=changes {
        ticker.tick().await;
        let cmd = json!({"type": "book", "request_id": n, "seat_nos": [n.to_string()], "user_id": "fanout"});
        // Measured from the booking request being sent, as a buyer would see it.
        let sent = origin.elapsed();
        let (kind, _) = request(&mut booker, cmd).await?;
        if kind == "booked" {
            committed[n as usize] = sent;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = cpu.stop()?;
    let _ = stop_all.send(true);
    let (mut lat, mut received, mut resyncs) = (Latencies::default(), 0u64, 0u64);
    for task in watcher_tasks {
        let (seen, r) = task.await?;
        resyncs += u64::from(r);
        for (n, at) in seen {
            if let Some(c) = committed.get(n as usize).filter(|c| **c != Duration::MAX) {
                lat.record(at.saturating_sub(*c));
                received += 1;
            }
        }
    }
    let booked = committed.iter().filter(|c| **c != Duration::MAX).count() as u64;
    let expected = booked * watchers as u64;
    let mut r = Map::new();
    r.insert("watchers".into(), json!(watchers));
    r.insert("changes_committed".into(), json!(booked));
    r.insert("deliveries".into(), json!(format!("{received}/{expected}")));
    r.insert("missed".into(), json!(expected.saturating_sub(received)));
    r.insert("resync_snapshots".into(), json!(resyncs));
    r.insert("request_to_receipt".into(), lat.summary());
    // CPU per delivered change: what each frame to each watcher costs.
    spent.report(received, "delivery", &mut r);
    Ok(r)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the server's /proc status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

async fn idle(
    t: &Target,
    sessions: usize,
    pid: u32,
    broadcast: bool,
) -> anyhow::Result<Map<String, Value>> {
    let show = t.create_show(100).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let mut all = connect_many(t, show, sessions).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per_session = (after.saturating_sub(before) * 1024) as f64 / sessions as f64;

    let mut r = Map::new();
    r.insert("sessions".into(), json!(sessions));
    r.insert(
        "connect_seconds".into(),
        json!((connect_secs * 100.0).round() / 100.0),
    );
    r.insert("server_rss_before_kib".into(), json!(before));
    r.insert("server_rss_after_kib".into(), json!(after));
    r.insert("bytes_per_session".into(), json!(per_session.round()));
    r.insert(
        "projected_gib_for_1m_sessions".into(),
        json!((per_session * 1e6 / (1u64 << 30) as f64 * 100.0).round() / 100.0),
    );
    if broadcast {
        let started = Instant::now();
        let status = t.book_rest(show, "1").await?;
        anyhow::ensure!(status == 201, "the broadcast booking failed: {status}");
        let got = join_all(all.iter_mut().map(|s| async move {
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    match next_text(&mut s.ws).await {
                        Ok(text) if text.contains("\"seats_changed\"") => return true,
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false)
        }))
        .await;
        let received = got.iter().filter(|g| **g).count();
        r.insert(
            "broadcast_received".into(),
            json!(format!("{received}/{sessions}")),
        );
        r.insert(
            "broadcast_seconds".into(),
            json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
        );
    }
    Ok(r)
}
