//! The one LISTEN connection of an instance.
//!
//! Notifications sent while it is down are lost for good, so every reconnection is
//! followed by [`Hub::resync_all`]: each session then reads a fresh snapshot.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::Hub;

pub const CHANNEL: &str = "seat_changes";

/// Runs until shutdown. Never gives up on the database: it retries with backoff
/// (capped at 2 s) while the rest of the server keeps serving.
pub async fn run(hub: Hub, pool: PgPool, mut shutdown: watch::Receiver<bool>) {
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
            Ok(Some(notification)) => hub.publish(notification.payload()),
            // The connection dropped and sqlx re-established it (and the LISTEN).
            Ok(None) => {
                metrics::counter!(crate::monitoring::LISTEN_RECONNECTS).increment(1);
                tracing::warn!(
                    "the LISTEN connection was lost and re-established; resynchronising sessions"
                );
                hub.resync_all();
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
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
