//! What runs an on-sale, as rules without I/O: the sale window of each show
//! ([`window`]), the waiting room's settings, pacing, shuffle and positions
//! ([`queue`]), and its signed tokens ([`token`]). The clock that tells sessions
//! when a window opens is `crate::clock`; the waiting room's database side is
//! `crate::waiting`.

pub mod queue;
pub mod token;
pub mod window;

pub use queue::{PlaceState, QueueRequest, QueueSettings, Standing};
pub use token::{Admission, Keys};
pub use window::{STATE_SQL, SalesState, Window, parse_instant};
