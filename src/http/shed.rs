//! The plain HTTP connections being served (`MAX_HTTP_CONNECTIONS`), and which one
//! gives way when a new one arrives at the cap.
//!
//! Left in the listen queue, a connection arriving at the cap waits until some
//! connection closes, and idle keep-alive connections close only at the header
//! timeout: 8,500 idle connections that reconnect whenever they are closed kept
//! every new client waiting 1.3 to 8.5 s. So a connection arriving at the cap is
//! answered at once. It is admitted if an address holding more connections than
//! the newcomer's (the crowd's) has one that is idle: that one is told to close
//! (it has no request in flight, so nothing is cut short). Otherwise the newcomer
//! is refused with 503: an address cannot push out addresses smaller than itself,
//! so a crowd that reconnects whenever it is closed only churns its own share.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A connection that answered a request this recently is not the first to go:
/// a client in the middle of a page load keeps its connection.
const RECENT: Duration = Duration::from_secs(1);

/// The connections of one listener.
pub struct Table {
    inner: Mutex<Inner>,
    cap: usize,
    epoch: Instant,
}

struct Inner {
    /// By the order they were admitted, oldest first.
    live: BTreeMap<u64, Arc<Conn>>,
    next_id: u64,
    /// Connections told to close that have not closed yet.
    leaving: usize,
    /// Connections per client address, those told to leave not counted; an
    /// address leaves the map with its last one.
    per_address: HashMap<IpAddr, usize>,
}

/// One connection's state, as its requests and the table see it.
pub struct Conn {
    address: IpAddr,
    in_flight: AtomicUsize,
    /// Milliseconds since the table's epoch at the last request's start or end.
    last_active: AtomicU64,
    told_to_leave: AtomicBool,
    /// Notified once when the connection should close after its current request.
    pub leave: Notify,
}

/// A connection's place in the table; it leaves the table when dropped.
pub struct Entry {
    table: Arc<Table>,
    id: u64,
    pub conn: Arc<Conn>,
}

/// Marks a request in flight on a connection until dropped.
pub struct Busy(Arc<Conn>, Arc<Table>);

impl Table {
    pub fn new(cap: usize) -> Arc<Table> {
        Arc::new(Table {
            inner: Mutex::new(Inner {
                live: BTreeMap::new(),
                next_id: 0,
                leaving: 0,
                per_address: HashMap::new(),
            }),
            cap: cap.max(1),
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A place for a new connection from `address`, making room if the table is
    /// full; `None` when no larger address has an idle connection to give way.
    pub fn admit(self: &Arc<Table>, address: IpAddr) -> Option<Entry> {
        let now = self.now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Connections told to leave still hold descriptors: past an eighth over
        // the cap, nobody more comes in until some have gone.
        if inner.live.len() >= self.cap + (self.cap / 8).max(1) {
            return None;
        }
        if inner.live.len() - inner.leaving >= self.cap {
            let victim = victim(&inner, address, now)?;
            victim.told_to_leave.store(true, Ordering::Relaxed);
            victim.leave.notify_one();
            inner.leaving += 1;
            // Its address no longer counts it: it is on its way out.
            forget(&mut inner.per_address, victim.address);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            address,
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(now),
            told_to_leave: AtomicBool::new(false),
            leave: Notify::new(),
        });
        inner.live.insert(id, conn.clone());
        *inner.per_address.entry(address).or_insert(0) += 1;
        Some(Entry {
            table: self.clone(),
            id,
            conn,
        })
    }

    /// How many connections are in the table (those told to leave included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .len()
    }
}

fn forget(per_address: &mut HashMap<IpAddr, usize>, address: IpAddr) {
    if let Some(n) = per_address.get_mut(&address) {
        *n -= 1;
        if *n == 0 {
            per_address.remove(&address);
        }
    }
}

/// The connection that gives way to a newcomer from `address`: one of the
/// address holding the most connections, if that is more than the newcomer's
/// would be.
fn victim(inner: &Inner, address: IpAddr, now: u64) -> Option<Arc<Conn>> {
    let newcomers = inner.per_address.get(&address).copied().unwrap_or(0) + 1;
    let (&biggest, &holds) = inner.per_address.iter().max_by_key(|(_, n)| **n)?;
    if holds <= newcomers {
        return None;
    }
    let theirs = inner.live.values().filter(|c| c.address == biggest);
    idlest(theirs, now, RECENT.as_millis() as u64).cloned()
}

/// The connection to close: the oldest one with no request in flight that has
/// been quiet for `recent` ms; failing that, the one quiet the longest.
fn idlest<'a>(
    conns: impl Iterator<Item = &'a Arc<Conn>>,
    now: u64,
    recent: u64,
) -> Option<&'a Arc<Conn>> {
    let mut quietest: Option<&Arc<Conn>> = None;
    for conn in conns {
        if conn.in_flight.load(Ordering::Relaxed) > 0 || conn.told_to_leave.load(Ordering::Relaxed)
        {
            continue;
        }
        let last = conn.last_active.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= recent {
            return Some(conn);
        }
        if quietest.is_none_or(|q| last < q.last_active.load(Ordering::Relaxed)) {
            quietest = Some(conn);
        }
    }
    quietest
}

impl Entry {
    /// Marks a request in flight until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.conn.in_flight.fetch_add(1, Ordering::Relaxed);
        self.conn
            .last_active
            .store(self.table.now(), Ordering::Relaxed);
        Busy(self.conn.clone(), self.table.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last_active.store(self.1.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut inner = self.table.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.live.remove(&self.id);
        if self.conn.told_to_leave.load(Ordering::Relaxed) {
            inner.leaving -= 1;
        } else {
            forget(&mut inner.per_address, self.conn.address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_the_cap_the_crowds_longest_idle_connection_gives_way() {
        let (crowd, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let table = Table::new(2);
        let a = table.admit(crowd).unwrap();
        let b = table.admit(crowd).unwrap();
        let request = b.busy();
        let c = table.admit(other).expect("room is made");
        assert!(a.conn.told_to_leave.load(Ordering::Relaxed), "a was idle");
        assert!(!b.conn.told_to_leave.load(Ordering::Relaxed), "b is busy");
        // a is leaving: c took its place. Now each address holds one: neither
        // may push the other out.
        assert!(table.admit(crowd).is_none());
        assert!(table.admit(other).is_none());
        drop(a);
        assert_eq!(table.len(), 2);
        drop(c);
        assert!(
            table.admit(other).is_some(),
            "a place is free once one has gone"
        );
        drop((request, b));
        assert!(
            !table.inner.lock().unwrap().per_address.contains_key(&crowd),
            "an address leaves with its last connection"
        );
    }

    #[test]
    fn a_crowd_cannot_push_out_anyone_but_itself() {
        let (crowd, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let table = Table::new(3);
        let _mine = table.admit(other).unwrap();
        let _theirs: Vec<_> = (0..2).map(|_| table.admit(crowd).unwrap()).collect();
        assert!(
            table.admit(crowd).is_none(),
            "the crowd's newcomer is refused"
        );
        assert!(table.admit(other).is_none(), "2 is not more than 1 + 1");
        let (x, y) = (ip("192.0.2.3"), ip("192.0.2.4"));
        let _x = table.admit(x).expect("a new address pushes out the crowd");
        assert!(
            table.admit(y).is_none(),
            "the crowd now holds one, as y would"
        );
    }

    #[test]
    fn a_recently_active_connection_goes_after_the_quiet_ones() {
        let now = 10_000;
        let conn = |last: u64| {
            Arc::new(Conn {
                address: ip("192.0.2.1"),
                in_flight: AtomicUsize::new(0),
                last_active: AtomicU64::new(last),
                told_to_leave: AtomicBool::new(false),
                leave: Notify::new(),
            })
        };
        // The oldest connection was used a moment ago; the next one has been quiet.
        let live = [conn(9_990), conn(2_000), conn(5_000)];
        let chosen = idlest(live.iter(), now, 1000).unwrap();
        assert_eq!(chosen.last_active.load(Ordering::Relaxed), 2_000);
        // All recent: the quietest of them.
        let live = [conn(9_990), conn(9_500)];
        let chosen = idlest(live.iter(), now, 1000).unwrap();
        assert_eq!(chosen.last_active.load(Ordering::Relaxed), 9_500);
    }
}
