//! WebSocket sessions: `GET /shows/{id}/ws` upgrades to a live seat map of one show,
//! over which clients can also book, confirm and cancel.

mod command;
pub mod protocol;
mod rate;
pub mod session;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Client frames are small JSON commands; larger ones close the session (1009).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite reserves 128 KiB per socket for reading by default; our frames are
/// small, and at tens of thousands of sessions the difference is gigabytes. It also
/// zeroes a whole chunk of this size before every read attempt, and a session
/// attempts a read each time it wakes (for every change it fans out): 1 KiB holds
/// several commands and keeps that cheap (4 KiB made it 4 % of the fan-out's CPU).
pub const READ_BUFFER_BYTES: usize = 1024;

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
