//! Which snapshot a session owes its client. A client's map starts from a snapshot
//! and follows the show's changes; when changes were missed, only a snapshot read
//! after the miss puts it right. This is the bookkeeping alone, with no I/O: the
//! session's snapshot reader ([`super::snapshots`]) reads and pauses as told, so every transition is
//! tested here without a socket or a database.

/// Where a session stands with its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owed {
    /// The first snapshot is being read. Changes wait in the channel until it is
    /// sent: the first frame a client gets is a snapshot.
    First,
    /// The first read failed (the database is down): read again after a pause.
    FirstAfterPause,
    /// Nothing: the client's map follows the channel's changes.
    UpToDate,
    /// Changes were missed and a snapshot is being read. `again`: more were missed
    /// since, which a read that began earlier may not hold, so another read follows.
    Resync { again: bool },
    /// A resync's read failed: read again after a pause. Whatever is missed
    /// meanwhile is in that read, since it starts later.
    ResyncAfterPause,
}

/// What the session does after a transition.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    StartRead,
    /// Wait a while, then call [`Owed::pause_over`].
    Pause,
    Nothing,
}

impl Owed {
    /// Whether changes go out now. Not before the first snapshot; after it, also
    /// while a resync is owed (the snapshot, when it comes, is newer anyway).
    pub(super) fn takes_changes(self) -> bool {
        !matches!(self, Owed::First | Owed::FirstAfterPause)
    }

    /// Whether the session is waiting out a pause after a failed read.
    pub(super) fn pausing(self) -> bool {
        matches!(self, Owed::FirstAfterPause | Owed::ResyncAfterPause)
    }

    /// The read under way was sent to the client.
    pub(super) fn read_sent(&mut self) -> Next {
        let (owed, next) = match *self {
            Owed::Resync { again: true } => (Owed::Resync { again: false }, Next::StartRead),
            Owed::First | Owed::Resync { again: false } => (Owed::UpToDate, Next::Nothing),
            unread => (unread, Next::Nothing),
        };
        *self = owed;
        next
    }

    /// The read under way failed.
    pub(super) fn read_failed(&mut self) -> Next {
        let (owed, next) = match *self {
            Owed::First => (Owed::FirstAfterPause, Next::Pause),
            Owed::Resync { .. } => (Owed::ResyncAfterPause, Next::Pause),
            unread => (unread, Next::Nothing),
        };
        *self = owed;
        next
    }

    /// The pause after a failed read is over.
    pub(super) fn pause_over(&mut self) -> Next {
        let (owed, next) = match *self {
            Owed::FirstAfterPause => (Owed::First, Next::StartRead),
            Owed::ResyncAfterPause => (Owed::Resync { again: false }, Next::StartRead),
            unpaused => (unpaused, Next::Nothing),
        };
        *self = owed;
        next
    }

    /// Changes were missed (the session lagged, or the hub lost notifications).
    /// Before the first snapshot nothing can be: changes wait in the channel.
    pub(super) fn missed(&mut self) -> Next {
        let (owed, next) = match *self {
            Owed::UpToDate => (Owed::Resync { again: false }, Next::StartRead),
            Owed::Resync { .. } => (Owed::Resync { again: true }, Next::Nothing),
            waiting => (waiting, Next::Nothing),
        };
        *self = owed;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::Next::{Nothing, Pause, StartRead};
    use super::Owed::{First, FirstAfterPause, ResyncAfterPause, UpToDate};
    use super::*;

    const READING: Owed = Owed::Resync { again: false };
    const READING_AGAIN: Owed = Owed::Resync { again: true };
    const ALL: [Owed; 6] = [
        First,
        FirstAfterPause,
        UpToDate,
        READING,
        READING_AGAIN,
        ResyncAfterPause,
    ];

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Event {
        Sent,
        Failed,
        PauseOver,
        Missed,
    }
    use Event::{Failed, Missed, PauseOver, Sent};

    impl Event {
        fn after(self, from: Owed) -> (Owed, Next) {
            let mut owed = from;
            let next = match self {
                Sent => owed.read_sent(),
                Failed => owed.read_failed(),
                PauseOver => owed.pause_over(),
                Missed => owed.missed(),
            };
            (owed, next)
        }
    }

    /// Every state under every event: where it leads, and what the session does.
    #[rustfmt::skip]
    const TRANSITIONS: [(Owed, Event, Owed, Next); 24] = [
        (First, Sent, UpToDate, Nothing),
        (First, Failed, FirstAfterPause, Pause),
        (First, PauseOver, First, Nothing),
        // Changes wait in the channel until the first snapshot is out.
        (First, Missed, First, Nothing),
        (FirstAfterPause, Sent, FirstAfterPause, Nothing),
        (FirstAfterPause, Failed, FirstAfterPause, Nothing),
        (FirstAfterPause, PauseOver, First, StartRead),
        (FirstAfterPause, Missed, FirstAfterPause, Nothing),
        (UpToDate, Sent, UpToDate, Nothing),
        (UpToDate, Failed, UpToDate, Nothing),
        (UpToDate, PauseOver, UpToDate, Nothing),
        (UpToDate, Missed, READING, StartRead),
        (READING, Sent, UpToDate, Nothing),
        (READING, Failed, ResyncAfterPause, Pause),
        (READING, PauseOver, READING, Nothing),
        // The read under way may have begun before the miss: one more follows it.
        (READING, Missed, READING_AGAIN, Nothing),
        (READING_AGAIN, Sent, READING, StartRead),
        // The read after the pause begins after every miss so far.
        (READING_AGAIN, Failed, ResyncAfterPause, Pause),
        (READING_AGAIN, PauseOver, READING_AGAIN, Nothing),
        // One more read, not one per miss.
        (READING_AGAIN, Missed, READING_AGAIN, Nothing),
        (ResyncAfterPause, Sent, ResyncAfterPause, Nothing),
        (ResyncAfterPause, Failed, ResyncAfterPause, Nothing),
        (ResyncAfterPause, PauseOver, READING, StartRead),
        (ResyncAfterPause, Missed, ResyncAfterPause, Nothing),
    ];

    #[test]
    fn each_state_under_each_event_leads_where_the_table_says() {
        for (from, event, to, next) in TRANSITIONS {
            assert_eq!(event.after(from), (to, next), "{from:?} on {event:?}");
        }
        for from in ALL {
            for event in [Sent, Failed, PauseOver, Missed] {
                let rows = TRANSITIONS.iter().filter(|r| (r.0, r.1) == (from, event));
                assert_eq!(
                    rows.count(),
                    1,
                    "{from:?} on {event:?} is in the table once"
                );
            }
        }
    }

    #[test]
    fn changes_wait_for_the_first_snapshot_and_only_for_it() {
        let taking: Vec<Owed> = ALL.into_iter().filter(|o| o.takes_changes()).collect();
        assert_eq!(taking, [UpToDate, READING, READING_AGAIN, ResyncAfterPause]);
    }

    #[test]
    fn a_session_pauses_only_after_a_failed_read() {
        let pausing: Vec<Owed> = ALL.into_iter().filter(|o| o.pausing()).collect();
        assert_eq!(pausing, [FirstAfterPause, ResyncAfterPause]);
    }

    #[test]
    fn an_outage_and_a_recovery_end_up_to_date() {
        let mut owed = First;
        assert_eq!(owed.read_failed(), Pause);
        assert_eq!(owed.pause_over(), StartRead);
        assert_eq!(owed.read_sent(), Nothing);
        assert_eq!(owed.missed(), StartRead);
        assert_eq!(owed.read_failed(), Pause);
        assert_eq!(owed.missed(), Nothing);
        assert_eq!(owed.pause_over(), StartRead);
        assert_eq!(owed.missed(), Nothing);
        assert_eq!(owed.read_sent(), StartRead);
        assert_eq!(owed.read_sent(), Nothing);
        assert_eq!(owed, UpToDate);
    }
}
