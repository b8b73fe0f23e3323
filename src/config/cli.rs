//! The command line: every setting's flag, environment variable, default and help,
//! written once, in the group that checks it. Values stay strings until their
//! group checks them, so that a bad one is reported in one line naming the
//! variable.

use clap::Parser;

use super::auth::AuthArgs;
use super::booking::BookingArgs;
use super::database::DatabaseArgs;
use super::http::HttpArgs;
use super::telemetry::TelemetryArgs;
use super::ws::WsArgs;

#[derive(Debug, Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "Real-time, concurrency-safe ticket booking server"
)]
pub(super) struct Cli {
    #[command(flatten)]
    pub(super) database: DatabaseArgs,
    #[command(flatten)]
    pub(super) http: HttpArgs,
    #[command(flatten)]
    pub(super) booking: BookingArgs,
    #[command(flatten)]
    pub(super) auth: AuthArgs,
    #[command(flatten)]
    pub(super) ws: WsArgs,
    #[command(flatten)]
    pub(super) telemetry: TelemetryArgs,
    /// Load the demo shows into an empty database, then serve.
    #[arg(long)]
    pub(super) demo: bool,
}
