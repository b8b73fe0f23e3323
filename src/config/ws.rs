//! WebSocket limits: handed whole to the upgrade handler and its sessions.

use std::num::NonZeroU32;
use std::time::Duration;

use clap::Args;

use super::value::{limit, number, seconds};

#[derive(Debug, Args)]
pub(super) struct WsArgs {
    /// Most WebSocket sessions this instance holds; more get HTTP 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "10000")]
    max_connections: String,
    /// Seconds between protocol pings to each WebSocket client.
    #[arg(long, env = "WS_PING_INTERVAL_SECS", default_value = "20")]
    ws_ping_interval_secs: String,
    /// Seconds of silence after which a WebSocket session is closed.
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECS", default_value = "60")]
    ws_idle_timeout_secs: String,
    /// Seconds a WebSocket write may wait for a client that stopped reading before
    /// the session is closed (4001).
    #[arg(long, env = "WS_SEND_TIMEOUT_SECS", default_value = "10")]
    ws_send_timeout_secs: String,
    /// Commands per second each WebSocket session may send (bursts of twice that).
    #[arg(long, env = "WS_COMMANDS_PER_SEC", default_value = "20")]
    ws_commands_per_sec: String,
    /// Commands per second all WebSocket sessions of one client address may send
    /// together (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "WS_COMMANDS_PER_ADDRESS_PER_SEC", default_value = "100")]
    ws_commands_per_address_per_sec: String,
    /// Most WebSocket sessions one client address may hold at once; more get 429
    /// TOO_MANY_SESSIONS. 0 turns the cap off. Buyers behind one NAT share an
    /// address: raise it for venues whose crowd arrives through one.
    #[arg(long, env = "MAX_SESSIONS_PER_ADDRESS", default_value = "200")]
    max_sessions_per_address: String,
}

/// What one instance's WebSocket sessions may hold and do.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// Most sessions at once (`MAX_CONNECTIONS`).
    pub max_sessions: usize,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub commands_per_sec: u32,
    /// `None`: no limit on the commands of one address's sessions together.
    pub commands_per_address_per_sec: Option<NonZeroU32>,
    /// `None`: no cap on the sessions of one address.
    pub max_sessions_per_address: Option<usize>,
}

impl WsArgs {
    pub(super) fn check(&self) -> Result<WsSettings, String> {
        let ping: u64 = number(
            "WS_PING_INTERVAL_SECS",
            &self.ws_ping_interval_secs,
            1,
            3600,
        )?;
        let idle: u64 = number(
            "WS_IDLE_TIMEOUT_SECS",
            &self.ws_idle_timeout_secs,
            1,
            86_400,
        )?;
        if idle <= ping {
            return Err(format!(
                "invalid WS_IDLE_TIMEOUT_SECS '{idle}': must be longer than WS_PING_INTERVAL_SECS ({ping})"
            ));
        }
        let per_address: usize = number(
            "MAX_SESSIONS_PER_ADDRESS",
            &self.max_sessions_per_address,
            0,
            10_000_000,
        )?;
        Ok(WsSettings {
            max_sessions: number("MAX_CONNECTIONS", &self.max_connections, 1, 10_000_000)?,
            ping_interval: Duration::from_secs(ping),
            idle_timeout: Duration::from_secs(idle),
            send_timeout: seconds("WS_SEND_TIMEOUT_SECS", &self.ws_send_timeout_secs, 1, 3600)?,
            commands_per_sec: number(
                "WS_COMMANDS_PER_SEC",
                &self.ws_commands_per_sec,
                1,
                1_000_000,
            )?,
            commands_per_address_per_sec: limit(
                "WS_COMMANDS_PER_ADDRESS_PER_SEC",
                &self.ws_commands_per_address_per_sec,
                1_000_000,
            )?,
            max_sessions_per_address: Some(per_address).filter(|n| *n > 0),
        })
    }
}
