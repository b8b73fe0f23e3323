//! The close codes a session ends with (docs/PROTOCOL.md, "Limits and liveness").

pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const POLICY: u16 = 1008;
pub const TOO_BIG: u16 = 1009;
pub const INTERNAL: u16 = 1011;
pub const IDLE: u16 = 4000;
pub const TOO_SLOW: u16 = 4001;
