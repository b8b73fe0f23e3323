//! The one LISTEN connection of an instance.
//!
//! Notifications sent while it is down are lost for good, so every reconnection is
//! followed by [`Hub::resync_all`]: each session then reads a fresh snapshot, and
//! the news reader hears [`NEWS_LOST`] and reads afresh what it follows.
//!
//! Two channels: [`CHANNEL`] carries seat changes, which the hub fans out;
//! [`NEWS_CHANNEL`] carries news about shows themselves (a sale window changed),
//! passed as they are to whoever reads `news` (the on-sale clock).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};

use super::Hub;

pub const CHANNEL: &str = "seat_changes";
pub const NEWS_CHANNEL: &str = "show_changes";
/// Sent to the news reader in place of the news that may have been lost.
pub const NEWS_LOST: &str = "";
/// News waiting for its reader beyond this is dropped and [`NEWS_LOST`] sent
/// instead (news is rare: admin changes and a few queue ticks per second).
pub const NEWS_CAPACITY: usize = 1024;

/// Runs until shutdown. Never gives up on the database: it retries with backoff
/// (capped at 2 s) while the rest of the server keeps serving.
pub async fn run(
    hub: Hub,
    pool: PgPool,
    news: mpsc::Sender<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut listener = None;
    let mut backoff = Duration::from_millis(50);
    let mut listened_before = false;
    loop {
        let active = match listener.as_mut() {
            Some(active) => active,
            None => {
                let connected = tokio::select! {
                    r = connect(&pool) => r,
                    _ = shutdown.changed() => return,
                };
                match connected {
                    Ok(fresh) => {
                        if std::mem::replace(&mut listened_before, true) {
                            metrics::counter!(crate::monitoring::LISTEN_RECONNECTS).increment(1);
                        }
                        backoff = Duration::from_millis(50);
                        hub.set_listening(true);
                        // Whatever happened while we were away, sessions catch up now.
                        hub.resync_all();
                        tell(&news, NEWS_LOST.into());
                        listener.insert(fresh)
                    }
                    Err(e) => {
                        hub.set_listening(false);
                        tracing::warn!(error = %e, retry_in = ?backoff, "cannot LISTEN for seat changes");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
        };
        let received = tokio::select! {
            r = active.try_recv() => r,
            _ = shutdown.changed() => return,
        };
        match received {
            Ok(Some(notification)) if notification.channel() == NEWS_CHANNEL => {
                tell(&news, notification.payload().into());
            }
            Ok(Some(notification)) => hub.publish(notification.payload()),
            // The connection dropped and sqlx re-established it (and the LISTEN).
            Ok(None) => {
                metrics::counter!(crate::monitoring::LISTEN_RECONNECTS).increment(1);
                tracing::warn!(
                    "the LISTEN connection was lost and re-established; resynchronising sessions"
                );
                hub.resync_all();
                tell(&news, NEWS_LOST.into());
            }
            Err(e) => {
                tracing::warn!(error = %e, "the LISTEN connection failed");
                hub.set_listening(false);
                listener = None;
            }
        }
    }
}

async fn connect(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is re-established (and LISTEN reissued) before `try_recv`
    // reports the loss with `Ok(None)`: the resync that follows then reads state
    // from after the new LISTEN, so nothing falls between the two.
    listener.eager_reconnect(true);
    // When the pool closes at shutdown, stop listening rather than keep the
    // pool's close waiting on this connection.
    listener.ignore_pool_close_event(false);
    listener.listen_all([CHANNEL, NEWS_CHANNEL]).await?;
    Ok(listener)
}

/// Passes news on without waiting: a reader that fell far behind is told that
/// some was lost instead.
fn tell(news: &mpsc::Sender<String>, payload: String) {
    if let Err(mpsc::error::TrySendError::Full(_)) = news.try_send(payload) {
        // Its reader looks at everything afresh every few seconds anyway
        // (`clock::RELOOK`), so the loss heals without a marker.
        tracing::warn!("the show news reader is behind; news dropped");
    }
}
