//! # boxoffice
//!
//! A ticket booking server that never sells one seat twice.
//!
//! ## Layout
//! - [`config`]: flags, environment and `.env`, checked once at start-up.
//! - [`app`]: builds an instance (database, listener, workers) and runs it.
//! - [`auth`]: who is booking: `AUTH=none`, or buyers proven by a JWT.
//! - [`db`]: the pool, migrations, the demo data and the self-started local cluster.
//! - [`shows`]: shows and their seat maps.
//! - [`onsale`]: what runs an on-sale: sale windows.
//! - [`clock`]: the on-sale clock, which tells sessions the instant a sale opens or closes.
//! - [`hall`]: hall layouts (sections, rows, categories, prices) and best-available.
//! - [`booking`]: the booking, confirm and cancel transactions, and their rules.
//! - [`status`]: booking and seat statuses.
//! - [`text`]: strings clients may send as numbers (seat numbers, user ids).
//! - [`expiry`]: the worker that expires holds at their deadline.
//! - [`pages`]: a show's seat map and hall as REST serves them, built once per version.
//! - [`hub`]: LISTEN/NOTIFY and the per-show broadcast channels that fan changes out.
//! - [`ws`]: WebSocket sessions and their protocol.
//! - [`http`]: REST routes and extractors.
//! - [`error`]: the one error type, and its mapping to status codes and JSON.
//! - [`throttle`]: rates per client address, shared by HTTP and WebSocket limits.
//! - [`telemetry`]: logging setup.
//! - [`monitoring`]: Prometheus metrics.
//!
//! PostgreSQL decides every conflict: see `docs/DESIGN.md`.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod booking;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod expiry;
pub mod hall;
pub mod http;
pub mod hub;
pub mod monitoring;
pub mod onsale;
pub mod pages;
pub mod shows;
pub mod status;
pub mod telemetry;
pub mod text;
pub mod throttle;
pub mod waiting;
pub mod ws;

pub use app::Application;
pub use config::Config;
pub use error::Error;
