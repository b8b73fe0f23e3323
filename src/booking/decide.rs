//! Which bookings of a batch get which seats. Pure: it runs under the row locks
//! the batch took, on what those locked rows said, and touches nothing else.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::model::PricedSeat;
use crate::config::BuyerLimits;
use crate::error::Error;
use crate::hall::PriceList;
use crate::status::SeatStatus;

/// A seat row as the batch locked it (a blocked seat reads as `BLOCKED`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct LockedSeat {
    pub id: i64,
    pub status: SeatStatus,
    pub booking_id: Option<i64>,
    pub seat_no: String,
    pub section: String,
    pub row_label: String,
    pub number: String,
    pub category: String,
}

impl LockedSeat {
    /// The seat as a booking's answer shows it.
    pub fn priced(&self, prices: &PriceList) -> PricedSeat {
        PricedSeat {
            seat_no: self.seat_no.clone(),
            section: self.section.clone(),
            row: self.row_label.clone(),
            number: self.number.clone(),
            category: self.category.clone(),
            price: prices.price(&self.category),
        }
    }
}

/// A winning booking's seats (in id order), or why the booking lost.
pub(super) type Decision<'s> = Result<Vec<&'s LockedSeat>, Error>;

/// One booking of the batch, as the decision sees it.
pub(super) struct Claim<'a> {
    pub seat_nos: &'a [String],
    pub user_id: &'a str,
    /// A hold (counts against `MAX_HOLDS_PER_USER`) rather than a sale.
    pub hold: bool,
    /// The client address, for `MAX_HOLDS_PER_ADDRESS` (`AUTH=none` only).
    pub address: Option<IpAddr>,
}

/// What buyers and addresses already have in the show, read under their locks.
#[derive(Debug, Default)]
pub(super) struct Held<'w> {
    pub buyers: HashMap<&'w str, Usage>,
    /// Live holds per client address.
    pub addresses: HashMap<IpAddr, i64>,
}

/// What a buyer already has in the show: seats of live bookings, and live holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub seats: i64,
    pub holds: i64,
}

/// Decides every booking of a batch, first come first served in queue order: a
/// seat won earlier in the batch is taken for later ones, and a losing booking
/// takes nothing. Seats held by `stale` bookings (holds past their deadline, about
/// to be expired in the same transaction) count as free. A booking that would take
/// its buyer past a limit loses too; `usage` is what each buyer had before the
/// batch (read under the buyer's lock), and wins within the batch add to it.
pub(super) fn decide<'s, 'w>(
    claims: &[Claim<'w>],
    locked: &'s [LockedSeat],
    stale: &[i64],
    limits: BuyerLimits,
    held: Held<'w>,
) -> Vec<Decision<'s>> {
    let Held {
        buyers: mut usage,
        mut addresses,
    } = held;
    let seats: HashMap<&str, &LockedSeat> =
        locked.iter().map(|s| (s.seat_no.as_str(), s)).collect();
    let mut taken: HashSet<i64> = locked
        .iter()
        .filter(|s| {
            s.status != SeatStatus::Available && !s.booking_id.is_some_and(|b| stale.contains(&b))
        })
        .map(|s| s.id)
        .collect();
    claims
        .iter()
        .map(|claim| {
            let seat_nos = claim.seat_nos;
            let missing: Vec<String> = seat_nos
                .iter()
                .filter(|n| !seats.contains_key(n.as_str()))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(Error::SeatsNotFound { seat_nos: missing });
            }
            let mut mine: Vec<&LockedSeat> = seat_nos.iter().map(|n| seats[n.as_str()]).collect();
            mine.sort_by_key(|s| s.id);
            let unavailable: Vec<String> = mine
                .iter()
                .filter(|s| taken.contains(&s.id))
                .map(|s| s.seat_no.clone())
                .collect();
            if !unavailable.is_empty() {
                return Err(Error::SeatsUnavailable {
                    seat_nos: unavailable,
                });
            }
            let has = usage.entry(claim.user_id).or_default();
            let after = Usage {
                seats: has.seats + mine.len() as i64,
                holds: has.holds + i64::from(claim.hold),
            };
            if let Some(max) = limits.max_seats
                && after.seats > i64::from(max)
            {
                return Err(Error::UserLimitReached {
                    limit: "MAX_SEATS_PER_USER",
                    max,
                    has: has.seats,
                });
            }
            if let Some(max) = limits.max_holds
                && claim.hold
                && after.holds > i64::from(max)
            {
                return Err(Error::UserLimitReached {
                    limit: "MAX_HOLDS_PER_USER",
                    max,
                    has: has.holds,
                });
            }
            if let (Some(max), Some(address), true) =
                (limits.max_holds_per_address, claim.address, claim.hold)
            {
                let holds = addresses.entry(address).or_default();
                if *holds >= i64::from(max) {
                    return Err(Error::UserLimitReached {
                        limit: "MAX_HOLDS_PER_ADDRESS",
                        max,
                        has: *holds,
                    });
                }
                *holds += 1;
            }
            *has = after;
            taken.extend(mine.iter().map(|s| s.id));
            Ok(mine)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(id: i64, status: SeatStatus, booking_id: Option<i64>) -> LockedSeat {
        LockedSeat {
            id,
            status,
            booking_id,
            seat_no: id.to_string(),
            section: String::new(),
            row_label: String::new(),
            number: String::new(),
            category: String::new(),
        }
    }

    fn free(ids: &[i64]) -> Vec<LockedSeat> {
        ids.iter()
            .map(|&id| seat(id, SeatStatus::Available, None))
            .collect()
    }

    fn wants(lists: &[&[&str]]) -> Vec<Vec<String>> {
        lists
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    /// Each decision as the seat numbers won, or the error code.
    fn run(
        wanted: &[&[&str]],
        locked: &[LockedSeat],
        stale: &[i64],
    ) -> Vec<Result<String, String>> {
        let wanted = wants(wanted);
        let wants: Vec<Claim> = wanted
            .iter()
            .map(|w| Claim {
                seat_nos: w,
                user_id: "u",
                hold: false,
                address: None,
            })
            .collect();
        summarize(decide(
            &wants,
            locked,
            stale,
            BuyerLimits::default(),
            Held::default(),
        ))
    }

    fn summarize(decisions: Vec<Decision<'_>>) -> Vec<Result<String, String>> {
        decisions
            .into_iter()
            .map(|d| match d {
                Ok(seats) => Ok(seats
                    .iter()
                    .map(|s| s.seat_no.as_str())
                    .collect::<Vec<_>>()
                    .join(",")),
                Err(e) if e.code() == "USER_LIMIT_REACHED" => {
                    let body = e.body();
                    Err(format!("{}:{}:{}", body["limit"], body["max"], body["has"]))
                }
                Err(e) => Err(format!("{}:{}", e.code(), e.body()["seat_nos"])),
            })
            .collect()
    }

    #[test]
    fn a_buyer_cannot_pass_the_seat_limit_within_a_batch_or_across_batches() {
        let locked = free(&[1, 2, 3, 4, 5, 6]);
        let wanted = wants(&[&["1", "2"], &["3"], &["4", "5"], &["6"]]);
        let buyers = ["a", "a", "a", "b"];
        let wants: Vec<Claim> = wanted
            .iter()
            .zip(buyers)
            .map(|(w, user_id)| Claim {
                seat_nos: w,
                user_id,
                hold: false,
                address: None,
            })
            .collect();
        let limits = BuyerLimits {
            max_seats: Some(4),
            ..BuyerLimits::default()
        };
        // "a" already has one seat from an earlier batch: 1 + 2 + 1 = 4, then no more.
        let held = Held {
            buyers: HashMap::from([("a", Usage { seats: 1, holds: 0 })]),
            ..Held::default()
        };
        assert_eq!(
            summarize(decide(&wants, &locked, &[], limits, held)),
            [
                Ok("1,2".into()),
                Ok("3".into()),
                Err(r#""MAX_SEATS_PER_USER":4:4"#.into()),
                Ok("6".into()),
            ]
        );
    }

    #[test]
    fn the_hold_limit_counts_holds_not_sales() {
        let locked = free(&[1, 2, 3]);
        let wanted = wants(&[&["1"], &["2"], &["3"]]);
        let wants: Vec<Claim> = wanted
            .iter()
            .zip([true, false, true])
            .map(|(w, hold)| Claim {
                seat_nos: w,
                user_id: "a",
                hold,
                address: None,
            })
            .collect();
        let limits = BuyerLimits {
            max_holds: Some(1),
            ..BuyerLimits::default()
        };
        assert_eq!(
            summarize(decide(&wants, &locked, &[], limits, Held::default())),
            [
                Ok("1".into()),
                Ok("2".into()),
                Err(r#""MAX_HOLDS_PER_USER":1:1"#.into()),
            ]
        );
    }

    #[test]
    fn an_address_naming_many_buyers_still_gets_its_holds_only() {
        let locked = free(&[1, 2, 3, 4, 5]);
        let wanted = wants(&[&["1"], &["2"], &["3"], &["4"], &["5"]]);
        let (here, there): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        // Five buyers from two addresses; the first address already holds one.
        let from = [
            (here, true),
            (here, true),
            (here, false),
            (there, true),
            (here, true),
        ];
        let buyers = ["a", "b", "c", "d", "e"];
        let wants: Vec<Claim> = wanted
            .iter()
            .zip(from)
            .zip(buyers)
            .map(|((w, (address, hold)), user_id)| Claim {
                seat_nos: w,
                user_id,
                hold,
                address: Some(address),
            })
            .collect();
        let limits = BuyerLimits {
            max_holds_per_address: Some(2),
            ..BuyerLimits::default()
        };
        let held = Held {
            addresses: HashMap::from([(here, 1)]),
            ..Held::default()
        };
        assert_eq!(
            summarize(decide(&wants, &locked, &[], limits, held)),
            [
                Ok("1".into()),
                Err(r#""MAX_HOLDS_PER_ADDRESS":2:2"#.into()),
                Ok("3".into()),
                Ok("4".into()),
                Err(r#""MAX_HOLDS_PER_ADDRESS":2:2"#.into()),
            ],
            "a sale is not a hold; another address has its own count"
        );
    }

    #[test]
    fn the_first_in_queue_order_wins_a_contested_seat() {
        let locked = free(&[1, 2]);
        assert_eq!(
            run(&[&["1"], &["1"], &["2"]], &locked, &[]),
            [
                Ok("1".into()),
                Err(r#"SEATS_UNAVAILABLE:["1"]"#.into()),
                Ok("2".into())
            ]
        );
    }

    #[test]
    fn a_losing_booking_takes_none_of_its_seats() {
        let locked = free(&[1, 2, 3]);
        // B loses on seat 2; its seat 3 stays free for C.
        assert_eq!(
            run(&[&["1", "2"], &["3", "2"], &["3"]], &locked, &[]),
            [
                Ok("1,2".into()),
                Err(r#"SEATS_UNAVAILABLE:["2"]"#.into()),
                Ok("3".into())
            ]
        );
    }

    #[test]
    fn seats_come_back_in_id_order_whatever_order_they_were_asked_in() {
        let locked = free(&[4, 5, 6]);
        assert_eq!(run(&[&["6", "4"]], &locked, &[]), [Ok("4,6".into())]);
    }

    #[test]
    fn holds_past_their_deadline_count_as_free() {
        let locked = vec![
            seat(1, SeatStatus::Reserved, Some(10)), // stale hold
            seat(2, SeatStatus::Reserved, Some(11)), // live hold
            seat(3, SeatStatus::Booked, Some(12)),
        ];
        assert_eq!(
            run(&[&["1"], &["2"], &["3"]], &locked, &[10]),
            [
                Ok("1".into()),
                Err(r#"SEATS_UNAVAILABLE:["2"]"#.into()),
                Err(r#"SEATS_UNAVAILABLE:["3"]"#.into())
            ]
        );
    }

    #[test]
    fn unknown_seats_are_named_and_do_not_block_others() {
        let locked = free(&[1]);
        assert_eq!(
            run(&[&["1", "99"], &["1"]], &locked, &[]),
            [Err(r#"SEATS_NOT_FOUND:["99"]"#.into()), Ok("1".into())]
        );
    }
}
