//! A real WebSocket client for the tests: it keeps a seat map the way the protocol
//! tells clients to (per seat, the entry with the highest version wins).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::TestApp;

/// seat_no -> (status, version)
pub type SeatMap = HashMap<String, (String, i64)>;

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub map: SeatMap,
    /// How many snapshots arrived (counting each snapshot once, not each of its parts).
    pub snapshots: usize,
    /// The `part` of the latest snapshot frame.
    pub last_part: u64,
    /// The first frame the session sent (the first part of its snapshot).
    pub first: Value,
    /// Every (seat, version) seen, with its status: one version never means two states.
    seen: HashMap<(String, i64), String>,
    next_request: u64,
}

pub fn ws_url(app: &TestApp, show_id: i64) -> String {
    format!("ws://{}/shows/{show_id}/ws", app.addr)
}

impl WsClient {
    /// Connects and waits for the first snapshot.
    pub async fn connect(app: &TestApp, show_id: i64) -> WsClient {
        let (stream, _) = connect_async(ws_url(app, show_id))
            .await
            .expect("websocket upgrade");
        WsClient::start(stream).await
    }

    /// Connects with a tiny kernel receive buffer, so that a client that stops
    /// reading backs up into the server at once (a phone on a bad network).
    pub async fn connect_with_small_buffer(app: &TestApp, show_id: i64) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let tcp = socket.connect(app.addr).await.expect("connect");
        let (stream, _) =
            tokio_tungstenite::client_async(ws_url(app, show_id), MaybeTlsStream::Plain(tcp))
                .await
                .expect("websocket upgrade");
        WsClient::start(stream).await
    }

    /// Connects from the source address `from` (a 127.x address is another
    /// client); the upgrade's status code if it is refused.
    pub async fn connect_from(
        app: &TestApp,
        show_id: i64,
        from: std::net::IpAddr,
    ) -> Result<WsClient, u16> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::new(from, 0))
            .expect("bind the source address");
        let tcp = socket.connect(app.addr).await.expect("connect");
        match tokio_tungstenite::client_async(ws_url(app, show_id), MaybeTlsStream::Plain(tcp))
            .await
        {
            Ok((stream, _)) => Ok(WsClient::start(stream).await),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("upgrade failed: {e}"),
        }
    }

    /// A client on a connection the test opened itself (an upgrade URL of its own).
    pub async fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        WsClient::start(stream).await
    }

    async fn start(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        let mut client = WsClient {
            stream,
            map: SeatMap::new(),
            snapshots: 0,
            seen: HashMap::new(),
            last_part: 0,
            first: Value::Null,
            next_request: 0,
        };
        let first = client.next_frame(Duration::from_secs(5)).await;
        client.first = first.clone();
        assert_eq!(
            first["type"], "snapshot",
            "the first frame is a snapshot: {first}"
        );
        // A large show's snapshot comes in parts; wait for the last one.
        let parts = first["parts"].as_u64().unwrap_or(1);
        while client.last_part < parts {
            client.next_frame(Duration::from_secs(5)).await;
        }
        client
    }

    /// The next text frame as JSON (applied to the map), skipping pings and pongs.
    pub async fn next_frame(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {within:?}"))
                .expect("the session is still open")
                .expect("a valid frame");
            match msg {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.apply(&frame);
                    return frame;
                }
                Message::Close(frame) => panic!("session closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Reads frames until one satisfies `pred`, and returns it.
    pub async fn until(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame(left).await;
            if pred(&frame) {
                return frame;
            }
        }
    }

    /// Reads whatever arrives within `within`, applying it.
    pub async fn drain_for(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let Message::Text(text) = msg {
                let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                self.apply(&frame);
            }
        }
    }

    /// Reads frames until the map equals `expected`.
    pub async fn settle_to(&mut self, expected: &SeatMap, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while &self.map != expected {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "map never matched the database: {}",
                describe_diff(&self.map, expected)
            );
            let _ = tokio::time::timeout(left, self.next_frame(left)).await;
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    /// The next message as it came off the socket, frames and errors alike.
    pub async fn next_raw(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.stream.next().await
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.try_send_raw(msg).await.expect("send");
    }

    /// Sends a frame; an error means the connection is gone.
    pub async fn try_send_raw(
        &mut self,
        msg: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.stream.send(msg).await
    }

    /// Sends a command with a fresh request_id and returns the reply to it.
    pub async fn request(&mut self, mut command: Value) -> Value {
        self.next_request += 1;
        let id = format!("r{}", self.next_request);
        command["request_id"] = json!(id);
        self.send_json(command).await;
        self.until(Duration::from_secs(10), |f| f["request_id"] == json!(id))
            .await
    }

    pub async fn book(&mut self, seats: &[&str], immediate_confirm: bool) -> Value {
        self.request(json!({"type": "book", "seat_nos": seats, "user_id": "ws", "immediate_confirm": immediate_confirm}))
            .await
    }

    /// Waits for the server to close the session and returns its close frame.
    pub async fn closed(&mut self, within: Duration) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub fn apply(&mut self, frame: &Value) {
        let kind = frame["type"].as_str().unwrap_or_default();
        if kind == "snapshot" {
            self.last_part = frame["part"].as_u64().unwrap_or(1);
            if self.last_part == 1 {
                self.snapshots += 1;
            }
        }
        if kind != "snapshot" && kind != "seats_changed" {
            return;
        }
        for seat in frame["seats"].as_array().expect("seats") {
            let seat_no = seat["seat_no"].as_str().unwrap().to_string();
            let status = seat["status"].as_str().unwrap().to_string();
            let version = seat["version"].as_i64().unwrap();
            let first_seen = self
                .seen
                .entry((seat_no.clone(), version))
                .or_insert_with(|| status.clone());
            assert_eq!(
                *first_seen, status,
                "seat {seat_no} version {version} was sent with two statuses"
            );
            let newer = self.map.get(&seat_no).is_none_or(|(_, v)| version > *v);
            if newer {
                self.map.insert(seat_no, (status, version));
            }
        }
    }
}

/// The seat map as the database has it.
pub async fn db_map(app: &TestApp, show_id: i64) -> SeatMap {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT seat_no, status, version FROM seats WHERE show_id = $1")
            .bind(show_id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(n, s, v)| (n, (s, v))).collect()
}

fn describe_diff(got: &SeatMap, want: &SeatMap) -> String {
    let mut diff: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(5)
        .map(|(k, v)| format!("seat {k}: have {:?}, database {v:?}", got.get(k)))
        .collect();
    diff.sort();
    diff.join("; ")
}
