//! The plain HTTP connections being served (`MAX_HTTP_CONNECTIONS`), and which one
//! gives way when a new one arrives at the cap.
//!
//! Left in the listen queue, a connection arriving at the cap waits until some
//! connection closes, and idle keep-alive connections close only at the header
//! timeout: 8,500 idle connections that reconnect whenever they are closed kept
//! every new client waiting 1.3 to 8.5 s. So when one address holds more than a
//! quarter of the places (a crowd) and some of them have been idle a while (a
//! second since their last answer, five if they never sent a request),
//! a newcomer from a smaller address is admitted at once and the crowd's longest
//! idle connection is told to close (it has no request in flight, so nothing is
//! cut short); the crowd's own newcomers are refused with 503, so a crowd that
//! reconnects whenever it is closed only churns its own share. Otherwise, at an
//! on-sale's opening when every place is busy or only just taken, arrivals wait
//! in the kernel's listen queue, which costs no descriptor, as before.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A connection that answered a request this recently is not the first to go:
/// a client in the middle of a page load keeps its connection.
const RECENT: Duration = Duration::from_secs(1);
/// A connection that has not sent a request yet is given longer: at an on-sale's
/// opening, with every core busy, a real client can take over a second to send
/// its first request after connecting (docs/BENCHMARKS.md, "What the hardening
/// of round two costs"). An idle crowd's connections still give way long before
/// the header timeout closes them.
const UNUSED: Duration = Duration::from_secs(5);

/// The connections of one listener.
pub struct Table {
    inner: Mutex<Inner>,
    cap: usize,
    epoch: Instant,
    /// Milliseconds a connection that never sent a request must sit before it
    /// may give way: [`UNUSED`], or half the header timeout if that is shorter
    /// (such a connection is halfway to being closed anyway).
    unused: u64,
    /// One permit per departure, for the connections waiting for room.
    room: Notify,
}

/// What becomes of a newcomer.
pub enum Admission {
    /// Served, in this place.
    In(Entry),
    /// Not now: every place is busy or just taken, and will free soon.
    Wait,
    /// Refused at once: its own address keeps idle connections, and no larger
    /// address has one to give way.
    Refuse,
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
    /// Whether a request has come in on it.
    used: AtomicBool,
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
    #[cfg(test)]
    fn new(cap: usize) -> Arc<Table> {
        Table::with_header_timeout(cap, UNUSED * 2)
    }

    pub fn with_header_timeout(cap: usize, header_timeout: Duration) -> Arc<Table> {
        Arc::new(Table {
            inner: Mutex::new(Inner {
                live: BTreeMap::new(),
                next_id: 0,
                leaving: 0,
                per_address: HashMap::new(),
            }),
            cap: cap.max(1),
            epoch: Instant::now(),
            unused: UNUSED.min(header_timeout / 2).as_millis() as u64,
            room: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// What becomes of a new connection from `address`.
    pub fn admit(self: &Arc<Table>, address: IpAddr) -> Admission {
        self.admit_at(address, self.now())
    }

    fn admit_at(self: &Arc<Table>, address: IpAddr, now: u64) -> Admission {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Connections told to leave still hold descriptors: past an eighth over
        // the cap, nobody more comes in until some have gone.
        if inner.live.len() >= self.cap + (self.cap / 8).max(1) {
            return Admission::Wait;
        }
        if inner.live.len() - inner.leaving >= self.cap {
            match victim(&inner, address, now, self.crowd(), self.unused) {
                Some(victim) => {
                    victim.told_to_leave.store(true, Ordering::Relaxed);
                    victim.leave.notify_one();
                    inner.leaving += 1;
                    // Its address no longer counts it: it is on its way out.
                    forget(&mut inner.per_address, victim.address);
                }
                // Its own address keeps idle connections here: it is the crowd,
                // and may use those rather than open more.
                None if inner.per_address.get(&address).copied().unwrap_or(0) > self.crowd()
                    && idlest(
                        inner.live.values().filter(|c| c.address == address),
                        now,
                        self.unused,
                    )
                    .is_some() =>
                {
                    return Admission::Refuse;
                }
                // Everyone is in the middle of something, or has only just
                // arrived (an on-sale's opening second): room comes soon.
                None => return Admission::Wait,
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            address,
            used: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(now),
            told_to_leave: AtomicBool::new(false),
            leave: Notify::new(),
        });
        inner.live.insert(id, conn.clone());
        *inner.per_address.entry(address).or_insert(0) += 1;
        Admission::In(Entry {
            table: self.clone(),
            id,
            conn,
        })
    }

    /// Whether a newcomer could be admitted now: there is room, or an idle
    /// connection that might give way. When neither, the accept loop leaves
    /// arrivals in the kernel's listen queue, which costs no descriptor: at an
    /// on-sale's opening every place is busy for a moment, and the queue is the
    /// cheapest waiting room there is.
    pub fn may_accept(&self) -> bool {
        let now = self.now();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.live.len() >= self.cap + (self.cap / 8).max(1) {
            return false;
        }
        if inner.live.len() - inner.leaving < self.cap {
            return true;
        }
        let crowd = self.crowd();
        inner.per_address.iter().any(|(address, n)| {
            *n > crowd
                && idlest(
                    inner.live.values().filter(|c| c.address == *address),
                    now,
                    self.unused,
                )
                .is_some()
        })
    }

    /// More connections than this from one address make a crowd: only a crowd's
    /// idle connections give way, and only a crowd's newcomers are refused. An
    /// on-sale's arrivals come from many addresses, each holding a few places
    /// for a moment; they wait their turn instead.
    fn crowd(&self) -> usize {
        self.cap / 4
    }

    /// Resolves when a connection may have left (or at once if one left since
    /// the last call: a departure is never missed).
    pub async fn room(&self) {
        self.room.notified().await;
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
fn victim(
    inner: &Inner,
    address: IpAddr,
    now: u64,
    crowd: usize,
    unused: u64,
) -> Option<Arc<Conn>> {
    let newcomers = inner.per_address.get(&address).copied().unwrap_or(0) + 1;
    let (&biggest, &holds) = inner.per_address.iter().max_by_key(|(_, n)| **n)?;
    if holds <= newcomers || holds <= crowd {
        return None;
    }
    let theirs = inner.live.values().filter(|c| c.address == biggest);
    idlest(theirs, now, unused).cloned()
}

/// The oldest connection with no request in flight that has been quiet for
/// [`RECENT`] since its last answer, or [`UNUSED`] since it arrived if it never
/// sent a request. One more recent is never chosen: it may be about to send its
/// request (at an on-sale's opening, every connection has just arrived).
fn idlest<'a>(
    conns: impl Iterator<Item = &'a Arc<Conn>>,
    now: u64,
    unused: u64,
) -> Option<&'a Arc<Conn>> {
    conns.into_iter().find(|conn| {
        let quiet_for = if conn.used.load(Ordering::Relaxed) {
            RECENT.as_millis() as u64
        } else {
            unused
        };
        conn.in_flight.load(Ordering::Relaxed) == 0
            && !conn.told_to_leave.load(Ordering::Relaxed)
            && now.saturating_sub(conn.last_active.load(Ordering::Relaxed)) >= quiet_for
    })
}

impl Entry {
    /// Marks a request in flight until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.conn.used.store(true, Ordering::Relaxed);
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
        self.table.room.notify_one();
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

    fn admitted(admission: Admission) -> Entry {
        match admission {
            Admission::In(entry) => entry,
            Admission::Wait => panic!("told to wait"),
            Admission::Refuse => panic!("refused"),
        }
    }

    fn is_refused(admission: Admission) -> bool {
        matches!(admission, Admission::Refuse)
    }

    #[test]
    fn at_the_cap_the_crowds_longest_idle_connection_gives_way() {
        let (crowd, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let table = Table::new(2);
        let a = admitted(table.admit_at(crowd, 0));
        let b = admitted(table.admit_at(crowd, 0));
        let request = b.busy();
        let c = admitted(table.admit_at(other, 5_000));
        assert!(a.conn.told_to_leave.load(Ordering::Relaxed), "a was idle");
        assert!(!b.conn.told_to_leave.load(Ordering::Relaxed), "b is busy");
        // a is leaving: c took its place. Now each address holds one: neither
        // may push the other out.
        assert!(!matches!(table.admit_at(crowd, 5_000), Admission::In(_)));
        assert!(!matches!(table.admit_at(other, 5_000), Admission::In(_)));
        drop(a);
        assert_eq!(table.len(), 2);
        drop(c);
        assert!(matches!(table.admit_at(other, 5_000), Admission::In(_)));
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
        let _mine = admitted(table.admit_at(other, 0));
        let _theirs: Vec<_> = (0..2).map(|_| admitted(table.admit_at(crowd, 0))).collect();
        let later = 5_000;
        assert!(
            is_refused(table.admit_at(crowd, later)),
            "the crowd's newcomer"
        );
        assert!(
            is_refused(table.admit_at(other, later)),
            "2 is not more than 1 + 1"
        );
        let _x = admitted(table.admit_at(ip("192.0.2.3"), later));
        assert!(
            !matches!(table.admit_at(ip("192.0.2.4"), later), Admission::In(_)),
            "the crowd now holds one, as the newcomer would"
        );
    }

    #[test]
    fn at_an_opening_nobody_who_just_arrived_is_pushed_out_the_newcomer_waits() {
        let table = Table::new(2);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let first = admitted(table.admit_at(a, 0));
        let _second = admitted(table.admit_at(a, 0));
        // Seconds later both are still quiet, but have not sent their first
        // request yet: a slow client at an opening.
        assert!(matches!(table.admit_at(b, 4_000), Admission::Wait));
        assert!(matches!(table.admit_at(a, 4_000), Admission::Wait));
        drop(first);
        assert!(matches!(table.admit_at(b, 4_000), Admission::In(_)));
    }

    #[test]
    fn the_oldest_quiet_connection_goes_and_the_recently_active_stay() {
        let now = 10_000;
        let conn = |last: u64| {
            Arc::new(Conn {
                address: ip("192.0.2.1"),
                used: AtomicBool::new(true),
                in_flight: AtomicUsize::new(0),
                last_active: AtomicU64::new(last),
                told_to_leave: AtomicBool::new(false),
                leave: Notify::new(),
            })
        };
        let live = [conn(9_990), conn(2_000), conn(5_000)];
        let chosen = idlest(live.iter(), now, 5_000).unwrap();
        assert_eq!(chosen.last_active.load(Ordering::Relaxed), 2_000);
        let live = [conn(9_990), conn(9_500)];
        assert!(
            idlest(live.iter(), now, 5_000).is_none(),
            "all active within a second"
        );
    }
}
