//! WebSocket sessions: `GET /shows/{id}/ws` upgrades to a live seat map of one show,
//! over which clients can also book, confirm and cancel.

pub mod protocol;
mod rate;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::Response;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::http::AppState;
use crate::http::extract::Id;
use session::Session;

/// Client frames are small JSON commands; larger ones close the session (1009).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite reserves 128 KiB per socket for reading by default; our frames are
/// small, and at tens of thousands of sessions the difference is gigabytes.
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    Id(show_id): Id,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    check_origin(&headers, &state.config.allowed_origins)?;
    crate::shows::ensure_exists(&state.pool, show_id).await?;
    let ws = ws.map_err(|e| {
        Error::Validation(format!(
            "{}: this endpoint needs a WebSocket upgrade",
            e.body_text()
        ))
    })?;
    let slot = state
        .sessions
        .try_acquire()
        .ok_or(Error::TooManyConnections)?;
    let session = Session {
        show_id,
        hub: state.hub.clone(),
        bookings: state.bookings.clone(),
        limits: session::Limits {
            ping_interval: state.config.ws_ping_interval,
            idle_timeout: state.config.ws_idle_timeout,
            commands_per_sec: state.config.ws_commands_per_sec,
            send_timeout: state.config.ws_send_timeout,
        },
        shutdown: state.shutdown.clone(),
        slot,
    };
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each frame straight through: there is no later flush to wait for.
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session.run(socket)))
}

/// Browsers send `Origin` with every WebSocket upgrade, and a page on another site
/// could otherwise open sessions (and book) with the visitor's network position.
/// Allowed: no `Origin` (non-browser clients), the same origin as the `Host`
/// header, and the origins listed in ALLOWED_ORIGINS.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<()> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority == host);
    if same_origin || allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(Error::OriginNotAllowed(origin.to_string()))
    }
}

/// Counts sessions against MAX_CONNECTIONS, and lets shutdown wait for them.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<SessionsInner>,
}

struct SessionsInner {
    count: AtomicUsize,
    max: usize,
    all_closed: Notify,
}

/// A session's place under the cap; released when dropped.
pub struct SessionSlot {
    inner: Arc<SessionsInner>,
}

impl Sessions {
    pub fn new(max: usize) -> Sessions {
        Sessions {
            inner: Arc::new(SessionsInner {
                count: AtomicUsize::new(0),
                max,
                all_closed: Notify::new(),
            }),
        }
    }

    pub fn try_acquire(&self) -> Option<SessionSlot> {
        let inner = &self.inner;
        inner
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < inner.max).then_some(n + 1)
            })
            .ok()
            .map(|_| SessionSlot {
                inner: inner.clone(),
            })
    }

    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Waits until every session has closed, or `limit` has passed.
    pub async fn wait_closed(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.all_closed.notified();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if self.inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins_are_checked_against_the_host_and_the_allow_list() {
        let allowed = vec!["https://tickets.example.com".to_string()];
        assert!(check_origin(&headers(None, "127.0.0.1:3000"), &[]).is_ok());
        assert!(
            check_origin(
                &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
                &[]
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(Some("https://evil.example"), "127.0.0.1:3000"),
                &[]
            )
            .is_err()
        );
        assert!(
            check_origin(
                &headers(Some("https://tickets.example.com"), "api.example.com"),
                &allowed
            )
            .is_ok()
        );
        assert!(check_origin(&headers(Some("null"), "127.0.0.1:3000"), &allowed).is_err());
    }

    #[test]
    fn the_session_cap_is_enforced_and_released() {
        let sessions = Sessions::new(2);
        let a = sessions.try_acquire().unwrap();
        let _b = sessions.try_acquire().unwrap();
        assert!(sessions.try_acquire().is_none());
        drop(a);
        assert!(sessions.try_acquire().is_some());
    }
}
