//! The expensive reads of a show (its seat map, its hall with what is left),
//! built once per version of the show and shared by every client that asks.
//!
//! A 100,000-seat map is 14.5 MB of JSON and took 0.44 s to read and write out;
//! 20 clients refreshing it starved bookings on other shows of the database and
//! took the server to 650 MB. Here the answer is built once, compressed once if
//! anyone asks for gzip, and handed out as shared bytes with an `ETag`, so a client
//! that has it gets 304 and nothing else.
//!
//! What says a built page is still current is a stamp: a count of the show's
//! changes that this instance has heard of, plus an epoch for everything. The
//! hub counts every change NOTIFY announces (from any instance), bookings count
//! their own writes as they answer (so a client reads its own booking at once,
//! before the NOTIFY arrives), and the epoch moves whenever changes may have been
//! missed (the LISTEN connection dropped or came back). The stamp is taken before
//! the database is read, so a page can only ever be stamped older than it is: a
//! change that races a build makes the next request build again, never serves a
//! page missing it. While LISTEN is down, nothing is cached.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::Bytes;
use dashmap::DashMap;

use crate::error::{Error, Result};

/// Most bytes of built pages kept (JSON and gzip together); the least recently
/// used go first beyond it.
const BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Which page of a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `GET /shows/:id/seats`.
    Seats,
    /// `GET /shows/:id`.
    Show,
}

/// A built page: its JSON, a strong validator, and its gzip once asked for.
pub struct Page {
    pub json: Bytes,
    /// A quoted hash of the JSON: equal pages have equal tags on every instance.
    pub etag: String,
    gzip: std::sync::OnceLock<Bytes>,
}

impl Page {
    fn new(json: Vec<u8>) -> Page {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        json.hash(&mut hasher);
        Page {
            etag: format!("\"{:016x}-{}\"", hasher.finish(), json.len()),
            json: Bytes::from(json),
            gzip: std::sync::OnceLock::new(),
        }
    }

    /// The JSON compressed with gzip (fast level: it is done once per version).
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut out = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.json.len() / 6),
                    flate2::Compression::fast(),
                );
                // Writing to memory cannot fail.
                let _ = out.write_all(&self.json);
                Bytes::from(out.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// Counts of changes per show, and the epoch; cheap to clone.
#[derive(Clone, Default)]
pub struct Stamps {
    inner: Arc<StampsInner>,
}

#[derive(Default)]
struct StampsInner {
    epoch: AtomicU64,
    /// Only shows with a built page are counted.
    changes: DashMap<i64, AtomicU64>,
}

impl Stamps {
    /// Something about `show_id` changed.
    pub fn changed(&self, show_id: i64) {
        if let Some(n) = self.inner.changes.get(&show_id) {
            n.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Changes may have been missed: nothing built so far is current.
    pub fn changed_all(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn stamp(&self, show_id: i64) -> Stamp {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let changes = self
            .inner
            .changes
            .entry(show_id)
            .or_default()
            .load(Ordering::Acquire);
        (epoch, changes)
    }
}

/// The built pages of this instance.
#[derive(Clone)]
pub struct Pages {
    stamps: Stamps,
    built: Arc<DashMap<(i64, Kind), Arc<Slot>>>,
    /// Ticks once per use, for least-recently-used eviction.
    clock: Arc<AtomicU64>,
}

/// A show's epoch and count of changes, when a page was built.
type Stamp = (u64, u64);

/// One page's latest build, and a lock so that one build serves all who wait.
#[derive(Default)]
struct Slot {
    latest: tokio::sync::Mutex<Option<Built>>,
    /// Ticks once per request and once per build start, ordering the two.
    tickets: AtomicU64,
    used: AtomicU64,
    size: AtomicUsize,
}

struct Built {
    page: Arc<Page>,
    /// The stamp taken before its database read.
    stamp: Stamp,
    /// Whether changes were being heard when it was built; a page built while
    /// they were not is shared only with those who waited for it.
    fresh: bool,
    /// The slot's ticket when the build started.
    started: u64,
}

impl Pages {
    pub fn new(stamps: Stamps) -> Pages {
        Pages {
            stamps,
            built: Arc::default(),
            clock: Arc::default(),
        }
    }

    /// The page of a show that exists, from memory if it shows everything known
    /// when the request arrived, else built by `build` (once, for everyone
    /// waiting meanwhile). `fresh` says whether changes are being heard at all;
    /// if not, a build is shared only by the requests that waited for it.
    pub async fn get<F, Fut>(
        &self,
        show_id: i64,
        kind: Kind,
        fresh: bool,
        build: F,
    ) -> Result<Arc<Page>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>>>,
    {
        let slot = self.built.entry((show_id, kind)).or_default().clone();
        slot.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        // Both taken before waiting: whatever was built from a stamp at least this
        // one, or started after this ticket, shows everything known now (the
        // client's own booking included).
        let arrived = self.stamps.stamp(show_id);
        let ticket = slot.tickets.fetch_add(1, Ordering::SeqCst);
        let mut latest = slot.latest.lock().await;
        if let Some(built) = &*latest {
            let current =
                fresh && built.fresh && built.stamp.0 == arrived.0 && built.stamp.1 >= arrived.1;
            if current || built.started > ticket {
                return Ok(built.page.clone());
            }
        }
        let stamp = self.stamps.stamp(show_id);
        let started = slot.tickets.fetch_add(1, Ordering::SeqCst);
        let page = Arc::new(Page::new(build().await?));
        // Counted at the JSON's size twice over, for the gzip that may join it.
        slot.size.store(page.json.len() * 2, Ordering::Relaxed);
        *latest = Some(Built {
            page: page.clone(),
            stamp,
            fresh,
            started,
        });
        drop(latest);
        self.evict();
        Ok(page)
    }

    /// Drops the least recently used pages while over the budget. The sizes are
    /// added up afresh (there are a few pages per show), so a slot evicted while
    /// it was being rebuilt cannot unbalance a running count.
    fn evict(&self) {
        loop {
            let total: usize = self
                .built
                .iter()
                .map(|e| e.value().size.load(Ordering::Relaxed))
                .sum();
            if total <= BUDGET_BYTES {
                return;
            }
            let oldest = self
                .built
                .iter()
                .min_by_key(|e| e.value().used.load(Ordering::Relaxed))
                .map(|e| *e.key());
            match oldest {
                Some(key) => drop(self.built.remove(&key)),
                None => return,
            }
        }
    }

    /// How many pages are kept, by kind (for tests).
    pub fn kept(&self) -> HashMap<Kind, usize> {
        let mut kept = HashMap::new();
        for entry in self.built.iter() {
            *kept.entry(entry.key().1).or_default() += 1;
        }
        kept
    }
}

/// Serializes a page's JSON off the async threads: a large seat map takes tens
/// of milliseconds.
pub async fn to_json<T: serde::Serialize + Send + 'static>(value: T) -> Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || serde_json::to_vec(&value))
        .await
        .map_err(|e| Error::Unexpected(e.into()))?
        .map_err(|e| Error::Unexpected(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn build(n: &AtomicUsize, body: &str) -> Result<Vec<u8>> {
        n.fetch_add(1, Ordering::SeqCst);
        Ok(body.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn a_page_is_built_once_per_version_of_its_show() {
        let stamps = Stamps::default();
        let pages = Pages::new(stamps.clone());
        let builds = AtomicUsize::new(0);
        let a = pages
            .get(1, Kind::Seats, true, || build(&builds, "v1"))
            .await
            .unwrap();
        let b = pages
            .get(1, Kind::Seats, true, || build(&builds, "v1"))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "shared, not rebuilt");
        stamps.changed(2);
        let _ = pages
            .get(1, Kind::Seats, true, || build(&builds, "v1"))
            .await
            .unwrap();
        assert_eq!(
            builds.load(Ordering::SeqCst),
            1,
            "another show's change costs nothing"
        );
        stamps.changed(1);
        let c = pages
            .get(1, Kind::Seats, true, || build(&builds, "v2"))
            .await
            .unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        assert_ne!(a.etag, c.etag);
        stamps.changed_all();
        let _ = pages
            .get(1, Kind::Seats, true, || build(&builds, "v2"))
            .await
            .unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 3, "a new epoch rebuilds");
        let _ = pages
            .get(1, Kind::Seats, false, || build(&builds, "v2"))
            .await
            .unwrap();
        let _ = pages
            .get(1, Kind::Seats, false, || build(&builds, "v2"))
            .await
            .unwrap();
        assert_eq!(
            builds.load(Ordering::SeqCst),
            5,
            "not hearing changes, nothing is cached"
        );
    }

    #[tokio::test]
    async fn equal_pages_have_equal_tags_and_gzip_round_trips() {
        let (x, y) = (
            Page::new(b"{\"a\":1}".to_vec()),
            Page::new(b"{\"a\":1}".to_vec()),
        );
        assert_eq!(x.etag, y.etag);
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&x.gzip()[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, "{\"a\":1}");
    }

    #[tokio::test]
    async fn those_who_waited_for_a_build_share_it_even_when_changes_are_unheard() {
        let pages = Pages::new(Stamps::default());
        let builds = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let ask = |body: &'static str, gated: bool| {
            let (pages, builds, gate) = (pages.clone(), builds.clone(), gate.clone());
            tokio::spawn(async move {
                pages
                    .get(1, Kind::Seats, false, || async move {
                        if gated {
                            gate.notified().await;
                        }
                        build(&builds, body).await
                    })
                    .await
                    .unwrap()
            })
        };
        let first = ask("v1", true);
        tokio::task::yield_now().await;
        // Two more arrive while the first build runs. Neither may take it (it
        // began before they asked); the first of them builds, the other shares.
        let second = ask("v2", false);
        tokio::task::yield_now().await;
        let third = ask("v3", false);
        tokio::task::yield_now().await;
        gate.notify_one();
        assert_eq!(&first.await.unwrap().json[..], b"v1");
        assert_eq!(&second.await.unwrap().json[..], b"v2");
        assert_eq!(&third.await.unwrap().json[..], b"v2");
        assert_eq!(builds.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_as_new_as_the_request_is_served_even_if_changes_came_since() {
        let stamps = Stamps::default();
        let pages = Pages::new(stamps.clone());
        let builds = AtomicUsize::new(0);
        let _ = pages
            .get(1, Kind::Seats, true, || build(&builds, "v1"))
            .await;
        stamps.changed(1);
        let _ = pages
            .get(1, Kind::Seats, true, || build(&builds, "v2"))
            .await;
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        assert!(pages.kept()[&Kind::Seats] == 1);
    }
}
