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

/// What every handler can reach. Every request takes a copy (axum's `State`), so
/// it is one shared pointer: a copy of the fields themselves was a dozen atomic
/// increments and as many decrements per request, 3 % of an arrival storm's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
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
