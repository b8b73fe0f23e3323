//! Connections for the load generator: WebSocket sessions spread over several
//! loopback source addresses (each has about 28,000 ephemeral ports), and the
//! admin calls that set a run up.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub type Ws = WebSocketStream<TcpStream>;

pub struct Target {
    pub base: String,
    pub addr: SocketAddr,
    pub admin_token: Option<String>,
    /// Signs bookers in (AUTH=jwt) when set.
    pub jwt_secret: Option<String>,
    /// The last octets of the loopback addresses connections come from.
    pub sources: std::ops::RangeInclusive<u8>,
    next_source: AtomicUsize,
    http: reqwest::Client,
}

impl Target {
    pub fn new(
        base: &str,
        admin_token: Option<String>,
        sources: std::ops::RangeInclusive<u8>,
    ) -> anyhow::Result<Target> {
        let authority = base
            .trim_end_matches('/')
            .split("://")
            .nth(1)
            .context("--url needs http://host:port")?;
        let addr = authority
            .parse()
            .context("--url must name an IP address and port")?;
        Ok(Target {
            base: base.trim_end_matches('/').to_string(),
            addr,
            admin_token,
            jwt_secret: None,
            sources,
            next_source: AtomicUsize::new(0),
            http: reqwest::Client::new(),
        })
    }

    pub async fn create_show(&self, seats: u32) -> anyhow::Result<i64> {
        let mut req = self
            .http
            .post(format!("{}/admin/shows", self.base))
            .json(&json!({
                "name": format!("load test {seats}"),
                "start_time": "2030-01-01T20:00:00Z",
                "total_seats": seats,
            }));
        if let Some(token) = &self.admin_token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if status != 201 {
            bail!("creating the show failed: {status} {body}");
        }
        body["show"]["id"].as_i64().context("no show id")
    }

    pub async fn rest_seats(&self, show: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        let body: Value = self
            .http
            .get(format!("{}/shows/{show}/seats", self.base))
            .send()
            .await?
            .json()
            .await?;
        let seats = body["seats"].as_array().context("no seats")?;
        Ok(seats
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                (
                    text("seat_no"),
                    text("status"),
                    s["version"].as_i64().unwrap_or(-1),
                )
            })
            .collect())
    }

    pub async fn book_rest(&self, show: i64, seat: &str) -> anyhow::Result<u16> {
        let body = json!({"seat_nos": [seat], "user_id": "load"});
        let resp = self
            .http
            .post(format!("{}/shows/{show}/book", self.base))
            .json(&body)
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }

    /// GETs a text body.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .text()
            .await?)
    }

    /// POSTs JSON; returns the status and the body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// POSTs JSON with the admin token; returns the status and the body.
    pub async fn post_admin(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = &self.admin_token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// A JWT for `sub`, valid for an hour, if the target signs buyers in.
    pub fn token_for(&self, sub: &str) -> anyhow::Result<Option<String>> {
        let Some(secret) = &self.jwt_secret else {
            return Ok(None);
        };
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            + 3600;
        let claims = serde_json::json!({"sub": sub, "exp": exp});
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        Ok(Some(jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &key,
        )?))
    }

    /// Opens a session from the next source address in turn (127.0.0.2, .3, ...).
    pub async fn connect(&self, show: i64) -> anyhow::Result<Ws> {
        self.connect_with(show, "").await
    }

    /// Opens a session with a query string (e.g. "?snapshot=state").
    pub async fn connect_with(&self, show: i64, query: &str) -> anyhow::Result<Ws> {
        let count = self.sources.clone().count().max(1);
        let n = self.next_source.fetch_add(1, Ordering::Relaxed) % count;
        let source = Ipv4Addr::new(127, 0, 0, self.sources.start() + n as u8);
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((source, 0)))?;
        let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(self.addr))
            .await
            .context("connect timed out")??;
        stream.set_nodelay(true)?;
        let url = format!("ws://{}/shows/{show}/ws{query}", self.addr);
        // tungstenite zeroes a whole read chunk before every read attempt: 1 KiB
        // (about ten changes) rather than 8 KiB, since every frame costs two attempts.
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0);
        let (ws, _) = client_async_with_config(url, stream, Some(config)).await?;
        Ok(ws)
    }
}

pub async fn send_json(ws: &mut Ws, value: &Value) -> anyhow::Result<()> {
    ws.send(Message::text(value.to_string())).await?;
    Ok(())
}

/// What the load tool reads of a frame: borrowed, so that watching is cheap.
#[derive(serde::Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    #[serde(default)]
    pub request_id: Option<Value>,
    #[serde(default, borrow)]
    pub seats: Vec<Seat<'a>>,
    #[serde(default, borrow)]
    pub code: Option<&'a str>,
    /// Snapshots of large shows come in parts: `part` of `parts`.
    #[serde(default)]
    pub part: u32,
    #[serde(default)]
    pub parts: u32,
}

#[derive(serde::Deserialize)]
pub struct Seat<'a> {
    #[serde(borrow)]
    pub seat_no: &'a str,
    #[serde(borrow)]
    pub status: &'a str,
    pub version: i64,
}

/// The next text frame, unparsed (pings are answered by tungstenite as we read).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<Utf8Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => bail!("session closed: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("session ended"),
        }
    }
}

/// Hands each text frame to `each` until the session ends, or until `stop` is set
/// and then nothing more arrives for `quiet` (what was still on its way).
pub async fn read_until_stopped(
    ws: &mut Ws,
    mut stop: tokio::sync::watch::Receiver<bool>,
    quiet: Duration,
    mut each: impl FnMut(Utf8Bytes),
) {
    // One waiter on `stop` for the whole run: a timeout per frame was a timer
    // inserted and removed per delivery, a tenth of the load tool's CPU.
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            text = next_text(ws) => match text {
                Ok(text) => each(text),
                Err(_) => return,
            },
            _ = &mut stopped => {
                while let Ok(Ok(text)) = tokio::time::timeout(quiet, next_text(ws)).await {
                    each(text);
                }
                return;
            }
        }
    }
}

/// A seat map kept by the protocol's rule: per seat, the highest version wins.
/// Seats are numbered "1".."N" by the scenarios, so a vector indexed by number will do.
#[derive(Default)]
pub struct SeatMap(pub Vec<Option<(u8, i64)>>);

fn status_code(status: &str) -> u8 {
    match status {
        "AVAILABLE" => 0,
        "RESERVED" => 1,
        _ => 2,
    }
}

impl SeatMap {
    pub fn apply(&mut self, frame: &Frame) {
        if frame.kind != "snapshot" && frame.kind != "seats_changed" {
            return;
        }
        for s in &frame.seats {
            let Ok(n) = s.seat_no.parse::<usize>() else {
                continue;
            };
            if self.0.len() <= n {
                self.0.resize(n + 1, None);
            }
            if self.0[n].is_none_or(|(_, v)| s.version > v) {
                self.0[n] = Some((status_code(s.status), s.version));
            }
        }
    }

    /// Applies a `state` frame of a show whose seats are "1".."N" in hall order.
    pub fn apply_state(&mut self, offset: usize, status: &str, versions: &[i64]) {
        for (i, (letter, version)) in status.chars().zip(versions).enumerate() {
            let n = offset + i + 1;
            if self.0.len() <= n {
                self.0.resize(n + 1, None);
            }
            let code = match letter {
                'A' => 0,
                'R' => 1,
                _ => 2,
            };
            if self.0[n].is_none_or(|(_, v)| *version > v) {
                self.0[n] = Some((code, *version));
            }
        }
    }

    /// The map's resume digest (docs/PROTOCOL.md): each 100-seat block's version
    /// sum, seats "1".."N" being the hall order. `None` while a seat is unknown.
    pub fn digest(&self) -> Option<String> {
        let seats = self.0.get(1..)?;
        let versions: Option<Vec<i64>> = seats.iter().map(|e| e.map(|(_, v)| v)).collect();
        let sums: Vec<String> = versions?
            .chunks(100)
            .map(|block| block.iter().sum::<i64>().to_string())
            .collect();
        (!sums.is_empty()).then(|| sums.join(","))
    }

    pub fn equals(&self, truth: &[(String, String, i64)]) -> bool {
        let known = self.0.iter().filter(|e| e.is_some()).count();
        known == truth.len()
            && truth.iter().all(|(no, status, v)| {
                let entry = no
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| self.0.get(n).copied().flatten());
                entry == Some((status_code(status), *v))
            })
    }
}
