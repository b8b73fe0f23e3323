//! Shows and their seats: creation (admin), changes, listing, and the seat map.

mod change;
mod create;
mod model;
mod news;
mod read;

pub use change::{ShowChange, ShowChangeRequest, update};
pub use create::{NewShow, NewShowRequest, create, insert};
pub use model::{Seat, Show, ShowQueue, ShowWithHall, show_name};
pub use read::{ensure_exists, get, get_with_hall, list, seats};
