//! WebSocket sessions: `GET /shows/{id}/ws` upgrades to a live seat map of one show,
//! over which clients can also book, confirm and cancel.

pub mod close;
mod command;
mod owed;
pub mod protocol;
mod rate;
pub mod session;
mod snapshots;
pub mod waiting;
mod writer;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::config::WsSettings;
use crate::error::Error;
use crate::throttle::Throttle;

/// Client frames are small JSON commands; larger ones close the session (1009).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite reserves 128 KiB per socket for reading by default; our frames are
/// small, and at tens of thousands of sessions the difference is gigabytes. It also
/// zeroes a whole chunk of this size before every read attempt, and a session
/// attempts a read each time it wakes (for every change it fans out): 1 KiB holds
/// several commands and keeps that cheap (4 KiB made it 4 % of the fan-out's CPU).
pub const READ_BUFFER_BYTES: usize = 1024;

/// Counts sessions against MAX_CONNECTIONS and each address's share of them
/// (MAX_SESSIONS_PER_ADDRESS), holds the commands rate the sessions of one
/// address share, and lets shutdown wait for every session.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<SessionsInner>,
}

struct SessionsInner {
    count: AtomicUsize,
    /// MAX_CONNECTIONS.
    total: usize,
    /// MAX_SESSIONS_PER_ADDRESS.
    per_address: Option<usize>,
    /// Sessions per address; an address leaves the map with its last session.
    by_address: DashMap<IpAddr, usize>,
    commands: Option<Arc<Throttle>>,
    all_closed: Notify,
}

/// A session's place under the caps; released when dropped.
pub struct SessionSlot {
    inner: Arc<SessionsInner>,
    address: IpAddr,
}

impl Sessions {
    pub fn new(settings: &WsSettings) -> Sessions {
        Sessions {
            inner: Arc::new(SessionsInner {
                count: AtomicUsize::new(0),
                total: settings.max_sessions,
                per_address: settings.max_sessions_per_address,
                by_address: DashMap::new(),
                commands: settings.commands_per_address_per_sec.map(Throttle::new),
                all_closed: Notify::new(),
            }),
        }
    }

    /// A place for a session of `address`: refused when the address has its share
    /// (429 `TOO_MANY_SESSIONS`) or the instance is full (503).
    pub fn try_acquire(&self, address: IpAddr) -> Result<SessionSlot, Error> {
        let inner = &self.inner;
        // The address's count first, under its map entry's lock, so that two
        // upgrades from one address cannot both take its last place.
        if let Some(max) = inner.per_address {
            let mut mine = inner.by_address.entry(address).or_insert(0);
            if *mine >= max {
                return Err(Error::TooManySessions(max));
            }
            *mine += 1;
            // The entry's lock is released here: dropping a slot takes it again.
        }
        let slot = SessionSlot {
            inner: inner.clone(),
            address,
        };
        let total = inner.count.fetch_add(1, Ordering::AcqRel);
        if total >= inner.total {
            // Dropping the slot gives both places back.
            drop(slot);
            return Err(Error::TooManyConnections);
        }
        Ok(slot)
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

impl SessionSlot {
    /// The client address the session belongs to.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Whether one more command fits the rate this session's address shares with
    /// its other sessions.
    pub fn command_allowed(&self) -> Result<(), Error> {
        match &self.inner.commands {
            Some(rate) => rate
                .check(self.address)
                .map_err(|_| Error::AddressRateLimited(rate.per_sec())),
            None => Ok(()),
        }
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if self.inner.per_address.is_some() {
            self.inner.by_address.remove_if_mut(&self.address, |_, n| {
                *n -= 1;
                *n == 0
            });
        }
        if self.inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(total: usize, per_address: Option<usize>) -> WsSettings {
        let mut settings = crate::Config::default().ws;
        settings.max_sessions = total;
        settings.max_sessions_per_address = per_address;
        settings.commands_per_address_per_sec = None;
        settings
    }

    #[test]
    fn the_session_cap_is_enforced_and_released() {
        let sessions = Sessions::new(&caps(2, None));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let a = sessions.try_acquire(here).unwrap();
        let _b = sessions.try_acquire(here).unwrap();
        assert!(matches!(
            sessions.try_acquire(here),
            Err(Error::TooManyConnections)
        ));
        assert_eq!(sessions.count(), 2, "a refused place is given back");
        drop(a);
        assert!(sessions.try_acquire(here).is_ok());
    }

    #[test]
    fn one_address_takes_its_share_and_no_more() {
        let sessions = Sessions::new(&caps(10, Some(2)));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = sessions.try_acquire(a).unwrap();
        let _second = sessions.try_acquire(a).unwrap();
        assert!(matches!(
            sessions.try_acquire(a),
            Err(Error::TooManySessions(2))
        ));
        assert!(sessions.try_acquire(b).is_ok(), "another address is served");
        drop(first);
        assert!(sessions.try_acquire(a).is_ok());
        let full = Sessions::new(&caps(1, Some(5)));
        let _only = full.try_acquire(a).unwrap();
        assert!(matches!(
            full.try_acquire(b),
            Err(Error::TooManyConnections)
        ));
        assert!(
            full.inner.by_address.get(&b).is_none(),
            "a refused address leaves nothing behind"
        );
    }
}
