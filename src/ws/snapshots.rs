//! The snapshots a session sends: the reads and the pauses that [`Owed`] asks for.
//! A read is a future the session's `select!` polls, not awaited inline, so a
//! session waiting for the database still answers pings, reads commands and
//! notices shutdown.

use std::pin::Pin;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::{Instant, Sleep};

use super::owed::{Next, Owed};
use super::writer::Writer;
use crate::error::Result;
use crate::hub::{Hub, SnapshotParts, View};

/// How long a session waits to read again after a read failed (database down).
const PAUSE: Duration = Duration::from_secs(1);

pub(super) struct Snapshots<'a> {
    hub: &'a Hub,
    show_id: i64,
    view: View,
    owed: Owed,
    read: Option<BoxFuture<'static, Result<SnapshotParts>>>,
    /// Made the first time a read fails: most sessions never need it.
    pause: Option<Pin<Box<Sleep>>>,
    /// The digest of the map the client already has (`have` on the upgrade): its
    /// first state then carries only what differs (docs/PROTOCOL.md, "Resuming").
    have: Option<Vec<i64>>,
}

/// What [`Snapshots::ready`] waited for.
pub(super) enum Ready {
    Read(Result<SnapshotParts>),
    PauseOver,
}

impl<'a> Snapshots<'a> {
    /// Owes the first snapshot. Subscribe to the show before the first poll: a
    /// change committed after the read then reaches the session through the
    /// channel (versions settle the overlap).
    pub(super) fn new(hub: &'a Hub, show_id: i64, view: View, have: Option<Vec<i64>>) -> Self {
        let mut snapshots = Snapshots {
            hub,
            show_id,
            view,
            owed: Owed::First,
            read: None,
            pause: None,
            have,
        };
        snapshots.follow(Next::StartRead);
        snapshots
    }

    pub(super) fn takes_changes(&self) -> bool {
        self.owed.takes_changes()
    }

    /// Changes were missed: a snapshot is owed.
    pub(super) fn missed(&mut self) {
        let next = self.owed.missed();
        self.follow(next);
    }

    /// Waits for the read under way or the end of a pause. Cancel-safe: both live
    /// in `self`. Pends forever when neither is under way.
    pub(super) async fn ready(&mut self) -> Ready {
        if let Some(read) = &mut self.read {
            let result = read.await;
            self.read = None;
            return Ready::Read(result);
        }
        match &mut self.pause {
            Some(pause) if self.owed.pausing() => {
                pause.as_mut().await;
                Ready::PauseOver
            }
            _ => std::future::pending().await,
        }
    }

    /// Sends a snapshot read, or pauses after a failed one; then reads again if
    /// that is owed.
    pub(super) fn take(&mut self, ready: Ready, writer: &mut Writer) {
        let next = match ready {
            Ready::Read(Ok(snapshot)) => {
                self.send(&snapshot, writer);
                self.owed.read_sent()
            }
            Ready::Read(Err(e)) => {
                tracing::warn!(error = %e, "cannot read a snapshot yet; retrying in 1 s");
                self.owed.read_failed()
            }
            Ready::PauseOver => self.owed.pause_over(),
        };
        self.follow(next);
    }

    fn send(&mut self, snapshot: &SnapshotParts, writer: &mut Writer) {
        // Only the first state can be resumed: after that the client's map is no
        // longer what its digest said.
        let resumed = self.have.take().map(|has| snapshot.resumed(&has));
        if let Some(resumed) = &resumed {
            let outcome = if resumed.is_some() {
                "resumed"
            } else {
                "everything"
            };
            metrics::counter!(crate::monitoring::RESUMES, "outcome" => outcome).increment(1);
        }
        match resumed.flatten() {
            Some(frames) => frames.into_iter().for_each(|f| writer.text(f)),
            // Parts are shared bytes: queueing them all costs pointers.
            None => snapshot.parts.iter().for_each(|f| writer.text(f.clone())),
        }
    }

    fn follow(&mut self, next: Next) {
        match next {
            Next::StartRead => self.read = Some(self.start_read()),
            Next::Pause => match &mut self.pause {
                Some(pause) => pause.as_mut().reset(Instant::now() + PAUSE),
                None => self.pause = Some(Box::pin(tokio::time::sleep(PAUSE))),
            },
            Next::Nothing => {}
        }
    }

    /// A snapshot read that started after this call (shared with other sessions
    /// asking at the same time).
    fn start_read(&self) -> BoxFuture<'static, Result<SnapshotParts>> {
        let (hub, show_id, view) = (self.hub.clone(), self.show_id, self.view);
        Box::pin(async move { hub.snapshot(show_id, view).await })
    }
}
