//! A session's place in its show's waiting room: it joins when it opens (or when
//! its buyer signs in), tells its client where it stands, and notices from the
//! queue's shared progress broadcast when to ask again: once the pre-queue has been
//! shuffled (to learn its rank) and once its rank has been let in (to learn its
//! admission). Between those, a waiting session costs nothing but the broadcast it
//! passes on: its client computes its position from `admitted_through`.

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::time::Sleep;

use crate::error::{Error, Result};
use crate::hub::QueueNews;
use crate::onsale::{PlaceState, Standing};
use crate::waiting::{Place, Queues};

/// How long a session waits before asking again after the database failed it.
const RETRY: Duration = Duration::from_secs(1);

/// What a session of a show with a waiting room starts with: the service, and
/// who the queue knows its buyer as (`None` under `AUTH=jwt` until one signs in).
pub struct Joining {
    pub queues: Queues,
    pub buyer: Option<String>,
    /// A queue id issued for this session (`AUTH=none`, none sent), for its client.
    pub new_queue_id: Option<String>,
    /// The client address a new place counts against (`AUTH=none`).
    pub address: Option<std::net::IpAddr>,
}

/// How often a session passes the waiting room's progress on to its client when
/// only the numbers moved. The doorman tells every instance at each admission (4
/// times a second in a busy queue), which the session needs for itself (to notice
/// its own turn at once); its client needs a position every few seconds. Half the
/// doorman's heartbeat, so a heartbeat always gets through: the client hears at
/// least every 4 s.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Which progress frames a session passes on: the first, any that changes whether
/// the queue is shuffled or paused, and otherwise one per [`PROGRESS_EVERY`].
#[derive(Default)]
pub struct Coalesce {
    last: Option<(std::time::Instant, bool, bool)>,
}

impl Coalesce {
    pub fn passes(&mut self, news: &QueueNews) -> bool {
        self.passes_at(news, std::time::Instant::now())
    }

    fn passes_at(&mut self, news: &QueueNews, now: std::time::Instant) -> bool {
        let due = match self.last {
            None => true,
            Some((at, shuffled, paused)) => {
                shuffled != news.shuffled
                    || paused != news.paused
                    || now.duration_since(at) >= PROGRESS_EVERY
            }
        };
        if due {
            self.last = Some((now, news.shuffled, news.paused));
        }
        due
    }
}

/// What a session knows of its place.
pub(super) struct Seat {
    queues: Queues,
    show_id: i64,
    /// Who the queue knows the buyer as; `None` until a buyer signs in (`AUTH=jwt`).
    buyer: Option<String>,
    address: Option<std::net::IpAddr>,
    /// The signed queue id to hand the client once (`AUTH=none`), so that it can
    /// come back to the same place.
    queue_id: Option<String>,
    rank: Option<i64>,
    state: Option<PlaceState>,
    /// The highest watermark the queue's progress has told: an answer read before
    /// it moved past this session's rank is asked again.
    heard_through: i64,
    /// The admission token and when it ends, once admitted.
    admission: Option<(String, DateTime<Utc>)>,
    asking: Option<BoxFuture<'static, Result<Place>>>,
    timer: Option<(Pin<Box<Sleep>>, Timer)>,
}

#[derive(Clone, Copy)]
enum Timer {
    /// Ask again (the pre-queue opens, or the database failed).
    Retry,
    /// The admission ends.
    Expire,
}

/// What a seat's own business produced.
pub(super) enum Happened {
    Answered(Result<Place>),
    Timer,
}

#[derive(Serialize)]
struct QueueFrame<'a> {
    r#type: &'static str,
    show_id: i64,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rank: Option<i64>,
    admitted_through: i64,
    #[serde(flatten)]
    standing: Standing,
    #[serde(skip_serializing_if = "Option::is_none")]
    opens_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_id: Option<&'a str>,
}

#[derive(Serialize)]
struct AdmittedFrame<'a> {
    r#type: &'static str,
    show_id: i64,
    admission_token: &'a str,
    expires_at: DateTime<Utc>,
}

impl Seat {
    pub(super) fn new(joining: Joining, show_id: i64) -> Seat {
        let mut seat = Seat {
            queues: joining.queues,
            show_id,
            buyer: joining.buyer,
            address: joining.address,
            queue_id: joining.new_queue_id,
            rank: None,
            state: None,
            heard_through: 0,
            admission: None,
            asking: None,
            timer: None,
        };
        seat.ask();
        seat
    }

    /// The buyer signed in (or changed): their place is another one.
    pub(super) fn signed_in(&mut self, buyer: &str) {
        if self.buyer.as_deref() == Some(buyer) {
            return;
        }
        self.buyer = Some(buyer.to_string());
        self.rank = None;
        self.state = None;
        self.admission = None;
        self.timer = None;
        self.asking = None;
        self.ask();
    }

    /// The buyer and admission a `book` of this session carries, while admitted.
    pub(super) fn admission(&self) -> Option<&str> {
        match (&self.admission, self.state) {
            (Some((_, until)), Some(PlaceState::Admitted)) if *until > Utc::now() => {
                self.buyer.as_deref()
            }
            _ => None,
        }
    }

    /// Who the queue knows this session's buyer as.
    pub(super) fn buyer(&self) -> Option<&str> {
        self.buyer.as_deref()
    }

    fn ask(&mut self) {
        let Some(buyer) = self.buyer.clone() else {
            return;
        };
        if self.asking.is_some() {
            return;
        }
        let (queues, show_id, address) = (self.queues.clone(), self.show_id, self.address);
        self.asking = Some(Box::pin(async move {
            queues.join(show_id, &buyer, address).await
        }));
    }

    /// Resolves when the place's own business needs the session: an answer from
    /// the queue, or a timer. Pending forever when there is none.
    pub(super) async fn next(&mut self) -> Happened {
        let asking = async {
            match self.asking.as_mut() {
                Some(asking) => asking.await,
                None => std::future::pending().await,
            }
        };
        let timer = async {
            match self.timer.as_mut() {
                Some((sleep, _)) => sleep.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            answer = asking => Happened::Answered(answer),
            () = timer => Happened::Timer,
        }
    }

    /// Handles what [`Seat::next`] produced; the frames for the client come back.
    pub(super) fn handle(&mut self, happened: Happened) -> Vec<String> {
        match happened {
            Happened::Answered(answer) => {
                self.asking = None;
                self.answered(answer)
            }
            Happened::Timer => {
                let (_, timer) = self.timer.take().expect("a timer fired");
                match timer {
                    Timer::Retry => {
                        self.ask();
                        Vec::new()
                    }
                    Timer::Expire => {
                        self.admission = None;
                        self.state = Some(PlaceState::Expired);
                        self.frame("expired", None, None).into_iter().collect()
                    }
                }
            }
        }
    }

    fn answered(&mut self, answer: Result<Place>) -> Vec<String> {
        let place = match answer {
            Ok(place) => place,
            Err(Error::QueueNotOpen { opens_at }) => {
                // At least a moment, whatever this instance's clock says: the
                // database's decides, and asking it in a loop would cost everyone.
                let wait = (opens_at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(RETRY / 4);
                self.set_timer(wait, Timer::Retry);
                return self
                    .frame("not_open", None, Some(opens_at))
                    .into_iter()
                    .collect();
            }
            // The waiting room was removed: nothing to wait for.
            Err(Error::NoQueue) => return Vec::new(),
            // This address has all the places it may take: said once, not asked again.
            Err(e @ Error::UserLimitReached { .. }) => {
                return vec![super::protocol::error_json(None, &e)];
            }
            Err(e) => {
                e.log();
                self.set_timer(RETRY, Timer::Retry);
                return Vec::new();
            }
        };
        self.rank = place.rank;
        let was = self.state.replace(place.state);
        let mut frames = Vec::new();
        if place.state == PlaceState::Admitted
            && let (Some(until), Some(buyer)) = (place.admitted_until, self.buyer.as_deref())
        {
            match self.queues.keys().admission(self.show_id, buyer, until) {
                Ok(token) => {
                    let wait = (until - Utc::now()).to_std().unwrap_or_default();
                    self.set_timer(wait, Timer::Expire);
                    frames.extend(self.frame("admitted", Some(&place), None));
                    frames.extend(json(&AdmittedFrame {
                        r#type: "admitted",
                        show_id: self.show_id,
                        admission_token: &token,
                        expires_at: until,
                    }));
                    self.admission = Some((token, until));
                }
                Err(e) => e.log(),
            }
            return frames;
        }
        if was != Some(place.state) || place.state == PlaceState::Waiting {
            let state = place.state.as_str();
            frames.extend(self.frame(state, Some(&place), None));
        }
        // The queue moved past this rank while the answer was on its way.
        if place.state == PlaceState::Waiting && place.rank.is_some_and(|r| r <= self.heard_through)
        {
            self.ask();
        }
        frames
    }

    /// Hears the queue's progress: asks again only when it says something for this
    /// session (its rank was given out, or let in).
    pub(super) fn heard(&mut self, news: &QueueNews) {
        self.heard_through = self.heard_through.max(news.admitted_through);
        if self.state != Some(PlaceState::Waiting) {
            return;
        }
        let due = match self.rank {
            None => news.shuffled,
            Some(rank) => rank <= news.admitted_through,
        };
        if due {
            self.ask();
        }
    }

    fn set_timer(&mut self, after: Duration, timer: Timer) {
        self.timer = Some((Box::pin(tokio::time::sleep(after)), timer));
    }

    /// A `queue` frame for this session (its queue id the first time only).
    fn frame(
        &mut self,
        state: &str,
        place: Option<&Place>,
        opens_at: Option<DateTime<Utc>>,
    ) -> Option<String> {
        let nowhere = Standing {
            position: None,
            ahead: None,
            eta_secs: None,
        };
        let (rank, admitted_through, standing) = match place {
            Some(p) => (p.rank, p.admitted_through, p.standing),
            None => (self.rank, 0, nowhere),
        };
        let queue_id = self.queue_id.take();
        json(&QueueFrame {
            r#type: "queue",
            show_id: self.show_id,
            state,
            rank,
            admitted_through,
            standing,
            opens_at,
            queue_id: queue_id.as_deref(),
        })
    }
}

fn json(frame: &impl Serialize) -> Option<String> {
    serde_json::to_string(frame)
        .map_err(|e| tracing::error!(error = %e, "cannot serialize a queue frame"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn news(admitted_through: i64, shuffled: bool, paused: bool) -> QueueNews {
        QueueNews {
            frame: "{}".into(),
            admitted_through,
            shuffled,
            paused,
        }
    }

    #[test]
    fn progress_reaches_the_client_coalesced() {
        let mut coalesce = Coalesce::default();
        let t0 = std::time::Instant::now();
        let mut at = |ms: u64, n: QueueNews| coalesce.passes_at(&n, t0 + Duration::from_millis(ms));
        assert!(at(0, news(0, false, false)), "the first");
        assert!(!at(250, news(0, false, false)));
        assert!(at(500, news(0, true, false)), "the shuffle");
        assert!(!at(750, news(5, true, false)), "numbers only");
        assert!(at(1000, news(5, true, true)), "a pause");
        let passed: Vec<u64> = (5..=24)
            .map(|tick| tick * 250)
            .filter(|ms| at(*ms, news(*ms as i64, true, true)))
            .collect();
        assert_eq!(
            passed,
            [3000, 5000],
            "a busy queue: one every {PROGRESS_EVERY:?}"
        );
    }
}
