//! A client that reconnects with the map it has (`have` on the upgrade) gets only
//! the blocks it missed, proven by their version sums; anything else gets all.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

use crate::helpers::TestApp;

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
