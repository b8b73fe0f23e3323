//! A client that reconnects with the map it has (`have` on the upgrade) gets only
//! the blocks it missed, proven by their version sums; anything else gets all.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

use crate::helpers::TestApp;
use crate::ws_client::db_map;

/// Seats per digest block, as docs/PROTOCOL.md defines it.
const BLOCK: usize = 100;

/// Opens a state-view session (with `extra` query parameters) and reads its first
/// state, every part of it.
async fn first_state(app: &TestApp, show: i64, extra: &str) -> Vec<Value> {
    let url = format!("ws://{}/shows/{show}/ws?snapshot=state{extra}", app.addr);
    let (mut ws, _) = connect_async(url).await.expect("upgrade");
    let mut parts = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a state part within 5 s")
            .expect("open")
            .expect("a frame");
        let part: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        assert_eq!(part["type"], "state", "{part}");
        let last = part["part"] == part["parts"];
        parts.push(part);
        if last {
            return parts;
        }
    }
}

/// Applies state parts to a map of versions by position.
fn apply(versions: &mut Vec<i64>, parts: &[Value]) {
    for part in parts {
        let offset = part["offset"].as_u64().unwrap() as usize;
        for (i, v) in part["versions"].as_array().unwrap().iter().enumerate() {
            if versions.len() <= offset + i {
                versions.resize(offset + i + 1, -1);
            }
            versions[offset + i] = versions[offset + i].max(v.as_i64().unwrap());
        }
    }
}

fn digest(versions: &[i64]) -> String {
    versions
        .chunks(BLOCK)
        .map(|b| b.iter().sum::<i64>().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn seats_in(parts: &[Value]) -> usize {
    parts
        .iter()
        .map(|p| p["status"].as_str().unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_returning_client_gets_only_the_blocks_it_missed() {
    let app = TestApp::spawn().await;
    let show = app.create_show(250).await;
    let (_, layout) = app.get(&format!("/shows/{show}/layout")).await;
    let seat_at = |i: usize| layout["seats"][i][0].as_str().unwrap().to_string();

    let mut had = Vec::new();
    apply(&mut had, &first_state(&app, show, "").await);
    assert_eq!(had.len(), 250);
    // While the client is away: seats in block 0 and in block 2 (the short last one).
    app.book_ok(show, &[&seat_at(0), &seat_at(1)], false).await;
    app.book_ok(show, &[&seat_at(240)], true).await;

    let missed = first_state(&app, show, &format!("&have={}", digest(&had))).await;
    let offsets: Vec<_> = missed.iter().map(|p| p["offset"].clone()).collect();
    assert_eq!(offsets, [json!(0), json!(200)], "blocks 0 and 2 only");
    assert_eq!(seats_in(&missed), 150);
    assert!(missed.iter().all(|p| p["resumed"] == true));
    assert_eq!(missed[0]["counts"]["AVAILABLE"], 247);
    let mut resumed = had.clone();
    apply(&mut resumed, &missed);

    let mut fresh = Vec::new();
    apply(&mut fresh, &first_state(&app, show, "").await);
    assert_eq!(resumed, fresh, "what was missed makes the map whole");

    // A client that missed nothing gets one empty part, and is complete.
    let nothing = first_state(&app, show, &format!("&have={}", digest(&fresh))).await;
    assert_eq!(nothing.len(), 1);
    assert_eq!(
        (
            &nothing[0]["status"],
            &nothing[0]["versions"],
            &nothing[0]["resumed"]
        ),
        (&json!(""), &json!([]), &json!(true))
    );
}

#[tokio::test]
async fn a_digest_that_proves_nothing_gets_everything() {
    let app = TestApp::spawn().await;
    let show = app.create_show(250).await;
    // Two blocks for a three-block show: not this show's map.
    let all = first_state(&app, show, "&have=0,0").await;
    assert_eq!(seats_in(&all), 250);
    assert!(all.iter().all(|p| p.get("resumed").is_none()));
}

#[tokio::test]
async fn a_bad_digest_is_refused_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let show = app.create_show(5).await;
    for query in [
        "have=0",
        "snapshot=full&have=0",
        "snapshot=state&have=x",
        "snapshot=state&have=1,-2",
    ] {
        let (status, body) = app.get(&format!("/shows/{show}/ws?{query}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("VALIDATION_FAILED")),
            "{query}: {body}"
        );
    }
}

/// A watcher of the state view that keeps a map by position, as the seat map does.
struct Watcher {
    /// Status letter and version by position; version -1 for a seat not yet seen.
    map: Vec<(u8, i64)>,
    position: Arc<HashMap<String, usize>>,
}

impl Watcher {
    fn digest(&self) -> Option<String> {
        self.map.iter().all(|(_, v)| *v >= 0).then(|| {
            let versions: Vec<i64> = self.map.iter().map(|(_, v)| *v).collect();
            digest(&versions)
        })
    }

    fn apply(&mut self, frame: &Value) {
        let mut set = |p: usize, letter: u8, version: i64| {
            if version > self.map[p].1 {
                self.map[p] = (letter, version);
            }
        };
        match frame["type"].as_str() {
            Some("state") => {
                let offset = frame["offset"].as_u64().unwrap() as usize;
                let letters = frame["status"].as_str().unwrap().as_bytes();
                for (i, v) in frame["versions"].as_array().unwrap().iter().enumerate() {
                    set(offset + i, letters[i], v.as_i64().unwrap());
                }
            }
            Some("seats_changed") => {
                for seat in frame["seats"].as_array().unwrap() {
                    let p = self.position[seat["seat_no"].as_str().unwrap()];
                    let letter = seat["status"].as_str().unwrap().as_bytes()[0];
                    set(p, letter, seat["version"].as_i64().unwrap());
                }
            }
            _ => {}
        }
    }

    /// Connects (with its digest when its map is whole), reads the first state,
    /// then watches for `watch`. Returns whether the first state was resumed.
    async fn visit(&mut self, app: &TestApp, show: i64, watch: Duration) -> bool {
        let have = self
            .digest()
            .map(|d| format!("&have={d}"))
            .unwrap_or_default();
        let url = format!("ws://{}/shows/{show}/ws?snapshot=state{have}", app.addr);
        let (mut ws, _) = connect_async(url).await.expect("upgrade");
        let mut resumed = false;
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut complete = false;
        let mut watching_until = None;
        loop {
            let deadline = watching_until.unwrap_or(until);
            let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await else {
                assert!(complete, "no whole first state within 5 s");
                return resumed;
            };
            let Ok(text) = frame.to_text() else { continue };
            let frame: Value = serde_json::from_str(text).unwrap();
            self.apply(&frame);
            if frame["type"] == "state" && !complete {
                resumed |= frame["resumed"] == true;
                if frame["part"] == frame["parts"] {
                    complete = true;
                    watching_until = Some(tokio::time::Instant::now() + watch);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_keep_coming_back_with_digests_end_equal_to_the_database() {
    let app = Arc::new(TestApp::spawn_with(|c| c.booking.hold_ttl = Duration::from_secs(1)).await);
    let show = app.create_show(250).await;
    let (_, layout) = app.get(&format!("/shows/{show}/layout")).await;
    let seat_nos: Vec<String> = layout["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap().to_string())
        .collect();
    let position: Arc<HashMap<String, usize>> = Arc::new(
        seat_nos
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );

    // Bookings, holds that expire, over the whole hall, while watchers come and go.
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let (app, stop, seat_nos) = (app.clone(), stop.clone(), seat_nos.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let a = &seat_nos[(n * 37) % seat_nos.len()];
                let b = &seat_nos[(n * 37 + 1) % seat_nos.len()];
                app.book(show, &[a, b], n.is_multiple_of(3)).await;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let watchers = (0..4).map(|w| {
        let (app, stop, position) = (app.clone(), stop.clone(), position.clone());
        tokio::spawn(async move {
            let mut me = Watcher {
                map: vec![(b'?', -1); position.len()],
                position,
            };
            let mut visits = 0u64;
            while !stop.load(Ordering::Relaxed) {
                visits += 1;
                let watch = Duration::from_millis(20 + (visits * 37 + w * 53) % 200);
                me.visit(&app, show, watch).await;
            }
            me
        })
    });
    let watchers: Vec<_> = watchers.collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    storm.await.unwrap();
    // Let the last holds lapse and be expired, so that the database stands still.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let mut truth = vec![(b'?', -1); seat_nos.len()];
    for (seat_no, (status, version)) in db_map(&app, show).await {
        truth[position[&seat_no]] = (status.as_bytes()[0], version);
    }
    assert!(truth.iter().any(|(_, v)| *v > 1), "the storm changed seats");
    for watcher in watchers {
        let mut me = watcher.await.unwrap();
        assert!(me.digest().is_some(), "every watcher had a whole map");
        let resumed = me.visit(&app, show, Duration::ZERO).await;
        assert!(
            resumed,
            "the last visit came back with a digest and was resumed"
        );
        let wrong = me.map.iter().zip(&truth).filter(|(a, b)| a != b).count();
        assert_eq!(
            wrong, 0,
            "{wrong} seats differ from the database after resuming"
        );
    }
}

/// `runs=true` says the same as the plain state, in runs.
#[tokio::test]
async fn a_state_in_runs_says_what_the_plain_state_says() {
    let app = TestApp::spawn().await;
    let show = app.create_show(2500).await;
    for seat in ["3", "4", "2001"] {
        assert_eq!(app.book(show, &[seat], seat != "4").await.0, 201);
    }
    let plain = first_state(&app, show, "").await;
    let runs = first_state(&app, show, "&runs=true").await;
    assert_eq!(plain.len(), runs.len(), "the same parts");
    for (p, r) in plain.iter().zip(&runs) {
        assert!(r["status"].is_null() && r["versions"].is_null(), "{r}");
        let mut letters = String::new();
        let text = r["status_runs"].as_str().unwrap();
        let mut chars = text.chars().peekable();
        while let Some(letter) = chars.next() {
            let mut n = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                n.push(d);
            }
            letters.push_str(&letter.to_string().repeat(n.parse().unwrap()));
        }
        assert_eq!(letters, p["status"].as_str().unwrap());
        let pairs = r["version_runs"].as_array().unwrap();
        let versions: Vec<i64> = pairs
            .chunks(2)
            .flat_map(|pair| {
                std::iter::repeat_n(
                    pair[0].as_i64().unwrap(),
                    pair[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        let plain_versions: Vec<i64> = p["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(versions, plain_versions);
        assert_eq!(r["offset"], p["offset"]);
    }
    assert!(
        runs[0].to_string().len() * 10 < plain[0].to_string().len(),
        "a hall of alike seats is a few bytes"
    );
    let refused = reqwest::get(app.url(&format!("/shows/{show}/ws?runs=true")))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "runs without the state view");
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("runs encodes a state view"),
        "{body}"
    );
    for bad in ["snapshot=state&runs=yes", "watch=1"] {
        let refused = reqwest::get(app.url(&format!("/shows/{show}/ws?{bad}")))
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
        let body: Value = refused.json().await.unwrap();
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("must be true or false"), "{bad}: {body}");
    }
}
