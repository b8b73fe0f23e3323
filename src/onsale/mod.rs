//! What runs an on-sale: the sale window of each show ([`window`]). The clock
//! that tells sessions when a window opens or closes is `crate::clock`.

pub mod window;

pub use window::{STATE_SQL, SalesState, Window, parse_instant};
