//! What every handler can reach.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::booking::Bookings;
use crate::config::Config;
use crate::hub::Hub;
use crate::ws::Sessions;

/// Requests are small JSON documents; anything larger is refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// A smaller pool for the reads behind pages (show lists, seat maps,
    /// layouts), so that a crowd refreshing maps queues for its own connections
    /// and never ahead of bookings.
    pub page_pool: PgPool,
    /// Seat maps and shows as built for every client, once per version.
    pub pages: crate::pages::Pages,
    pub bookings: Bookings,
    pub config: Arc<Config>,
    pub hub: Hub,
    pub sessions: Sessions,
    /// The shows' waiting rooms.
    pub queues: crate::waiting::Queues,
    /// Becomes `true` when the server begins to shut down.
    pub shutdown: watch::Receiver<bool>,
}
