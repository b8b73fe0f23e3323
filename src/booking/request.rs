//! What a client asks for when it books, and the rules a request must pass before
//! it reaches the database. REST and WebSocket commands share this code.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::schema::{ArrayBuilder, Object, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::error::{Error, Result};
use crate::hall::Ask;
use crate::text::{Text, text_or_integer};

/// A booking request as sent. Seat numbers and user ids may be strings or
/// integers, as the old service's clients sent both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BookRequestBody {
    /// The seats, by number (strings; integers are accepted too); or leave them
    /// out and ask for `best_available`.
    #[serde(default)]
    #[schema(schema_with = seat_nos)]
    pub seat_nos: Option<Vec<Text>>,
    #[serde(default)]
    pub best_available: Option<BestAvailableBody>,
    /// Required with `AUTH=none`; with `AUTH=jwt` the buyer is the token's subject,
    /// and a `user_id` sent anyway must be that subject.
    #[serde(default)]
    #[schema(schema_with = user_id)]
    pub user_id: Option<Text>,
    #[serde(default)]
    pub immediate_confirm: Option<bool>,
}

/// "The best `count` seats": the server picks them (see `hall::best`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BestAvailableBody {
    /// At most `MAX_SEATS_PER_BOOKING`.
    #[schema(minimum = 1)]
    pub count: i64,
    /// Only seats of this category (any category when left out).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.]{1,16}$")]
    pub category: Option<String>,
    /// Accessible seats, and only those; without it, accessible seats are left
    /// for those who need them.
    #[serde(default)]
    pub accessible: bool,
    /// Seats in several places rather than a 409 when no row has `count` together.
    #[serde(default)]
    pub allow_split: bool,
}

/// Which seats a booking wants.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatChoice {
    /// These seats, all or none.
    Listed(Vec<String>),
    /// The best free ones the server can find.
    Best(Ask),
}

/// A booking request that passed validation.
#[derive(Debug, Clone)]
pub struct BookRequest {
    pub seats: SeatChoice,
    pub user_id: String,
    /// `false` makes a hold (PENDING) that expires unless confirmed.
    pub immediate_confirm: bool,
    /// With `AUTH=none`, the address the request came from: buyers name
    /// themselves there, so holds are also counted per address
    /// (`MAX_HOLDS_PER_ADDRESS`).
    pub client: Option<std::net::IpAddr>,
    /// The waiting-room buyer whose admission to this show came with the request
    /// (its token already verified); the booking transaction checks that the
    /// admission is still live when the show has a waiting room.
    pub admission: Option<String>,
}

impl BookRequest {
    /// Checks a request; `buyer` is the signed-in buyer with `AUTH=jwt`.
    pub fn parse(
        body: BookRequestBody,
        max_seats: usize,
        buyer: Option<&str>,
    ) -> Result<BookRequest> {
        let invalid = |msg: String| Err(Error::Validation(msg));
        let sent = body.user_id.map(|u| u.0.trim().to_string());
        let user_id = match (buyer, sent) {
            (Some(buyer), Some(sent)) if sent != buyer => {
                return invalid(
                    "user_id must be left out or be the signed-in buyer (the token's sub)".into(),
                );
            }
            (Some(buyer), _) => buyer.to_string(),
            (None, Some(sent)) => sent,
            (None, None) => return invalid("user_id is required".into()),
        };
        if user_id.is_empty() || user_id.chars().count() > 100 {
            return invalid("user_id must be 1 to 100 characters".into());
        }
        if user_id.contains('\0') {
            return invalid("user_id must not contain NUL characters".into());
        }
        let seats = match (body.seat_nos, body.best_available) {
            (Some(_), Some(_)) => {
                return invalid("give either seat_nos or best_available, not both".into());
            }
            (None, None) => return invalid("seat_nos must list at least one seat".into()),
            (Some(seat_nos), None) => SeatChoice::Listed(seat_nos_of(seat_nos, max_seats)?),
            (None, Some(best)) => {
                if best.count < 1 || best.count > max_seats as i64 {
                    return invalid(format!(
                        "best_available.count must be 1 to {max_seats} (seats per booking)"
                    ));
                }
                if let Some(c) = &best.category
                    && (c.is_empty() || c.len() > 16 || c.contains('\0'))
                {
                    return invalid("best_available.category must be a category key".into());
                }
                SeatChoice::Best(Ask {
                    count: best.count as usize,
                    category: best.category,
                    accessible: best.accessible,
                    allow_split: best.allow_split,
                })
            }
        };
        Ok(BookRequest {
            seats,
            user_id,
            immediate_confirm: body.immediate_confirm.unwrap_or(true),
            admission: None,
            client: None,
        })
    }
}

/// Checks a list of seat numbers.
fn seat_nos_of(sent: Vec<Text>, max_seats: usize) -> Result<Vec<String>> {
    let invalid = |msg: String| Err(Error::Validation(msg));
    if sent.is_empty() {
        return invalid("seat_nos must list at least one seat".into());
    }
    if sent.len() > max_seats {
        return invalid(format!(
            "at most {max_seats} seats per booking, got {}",
            sent.len()
        ));
    }
    let seat_nos: Vec<String> = sent.into_iter().map(|s| s.0.trim().to_string()).collect();
    if let Some(bad) = seat_nos
        .iter()
        .find(|s| s.is_empty() || s.chars().count() > 32 || s.contains('\0'))
    {
        return invalid(format!(
            "seat number '{}' must be 1 to 32 characters, none of them NUL",
            bad.escape_debug()
        ));
    }
    let mut seen = HashSet::new();
    let mut duplicates: Vec<&str> = seat_nos
        .iter()
        .filter(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
        .collect();
    if !duplicates.is_empty() {
        duplicates.dedup();
        return invalid(format!(
            "seat_nos lists the same seat more than once: {}",
            duplicates.join(", ")
        ));
    }
    Ok(seat_nos)
}

/// A buyer's id: 1 to 100 characters once trimmed, none of them NUL, or an integer.
pub fn user_id() -> Object {
    let about = "Who books: 1 to 100 characters once trimmed, or an integer. Required with \
                 `AUTH=none`; with `AUTH=jwt` the buyer is the token's subject, and a \
                 `user_id` sent anyway must be that subject.";
    text_or_integer(100, true)
        .description(Some(about))
        .examples([json!("alice")])
        .build()
}

/// The seats of a booking: each 1 to 32 characters once trimmed (none of them
/// NUL) or an integer, each once. `maxItems` is `MAX_SEATS_PER_BOOKING`, which
/// the document gets from the configuration.
pub fn seat_nos() -> RefOr<Schema> {
    let about = "The seats, by number (1 to 32 characters once trimmed, or an integer), each \
                 once; or leave them out and ask for `best_available`.";
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .description(Some(about))
        .items(text_or_integer(32, false).build())
        .min_items(Some(1))
        .unique_items(true)
        .examples([json!(["7", "8"])])
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BookRequest> {
        BookRequest::parse(serde_json::from_str(json).expect("valid body"), 10, None)
    }

    fn message(json: &str) -> String {
        match parse(json) {
            Err(Error::Validation(m)) => m,
            other => panic!("expected a validation error for {json}, got {other:?}"),
        }
    }

    #[test]
    fn integers_are_accepted_as_seat_numbers_and_user_ids() {
        let r = parse(r#"{"seat_nos": [7, "8"], "user_id": 42}"#).unwrap();
        assert_eq!(r.seats, SeatChoice::Listed(vec!["7".into(), "8".into()]));
        assert_eq!(r.user_id, "42");
        assert!(r.immediate_confirm, "immediate_confirm defaults to true");
    }

    #[test]
    fn invalid_requests_are_explained() {
        assert!(message(r#"{"seat_nos": [], "user_id": "u"}"#).contains("at least one"));
        assert!(message(r#"{"seat_nos": ["1"], "user_id": " "}"#).contains("user_id"));
        assert!(
            message(
                r#"{"seat_nos": ["1","2","3","4","5","6","7","8","9","10","11"], "user_id": "u"}"#
            )
            .contains("at most 10")
        );
        assert!(
            message(r#"{"seat_nos": ["3", "4", "3"], "user_id": "u"}"#)
                .contains("more than once: 3")
        );
        assert!(message(r#"{"seat_nos": [""], "user_id": "u"}"#).contains("1 to 32"));
        assert!(message(r#"{"seat_nos": ["1\u0000"], "user_id": "u"}"#).contains("NUL"));
        assert!(message(r#"{"seat_nos": ["1"], "user_id": "a\u0000b"}"#).contains("NUL"));
    }

    #[test]
    fn a_signed_in_buyer_is_the_user_id() {
        let body = |json: &str| serde_json::from_str::<BookRequestBody>(json).unwrap();
        let r = BookRequest::parse(body(r#"{"seat_nos": ["1"]}"#), 10, Some("alice")).unwrap();
        assert_eq!(r.user_id, "alice");
        let same = body(r#"{"seat_nos": ["1"], "user_id": "alice"}"#);
        assert!(BookRequest::parse(same, 10, Some("alice")).is_ok());
        let other = body(r#"{"seat_nos": ["1"], "user_id": "mallory"}"#);
        assert!(BookRequest::parse(other, 10, Some("alice")).is_err());
        assert!(message(r#"{"seat_nos": ["1"]}"#).contains("user_id is required"));
    }

    #[test]
    fn other_json_types_are_rejected_by_the_parser() {
        assert!(
            serde_json::from_str::<BookRequestBody>(r#"{"seat_nos": [1.5], "user_id": "u"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<BookRequestBody>(r#"{"seat_nos": "1", "user_id": "u"}"#)
                .is_err()
        );
    }

    #[test]
    fn best_available_asks_are_checked() {
        let r =
            parse(r#"{"best_available": {"count": 4, "category": "A"}, "user_id": "u"}"#).unwrap();
        assert_eq!(
            r.seats,
            SeatChoice::Best(Ask {
                count: 4,
                category: Some("A".into()),
                accessible: false,
                allow_split: false,
            })
        );
        assert!(message(r#"{"best_available": {"count": 0}, "user_id": "u"}"#).contains("1 to 10"));
        assert!(
            message(r#"{"best_available": {"count": 11}, "user_id": "u"}"#).contains("1 to 10")
        );
        assert!(
            message(r#"{"best_available": {"count": 1, "category": ""}, "user_id": "u"}"#)
                .contains("category")
        );
        assert!(
            message(r#"{"seat_nos": ["1"], "best_available": {"count": 1}, "user_id": "u"}"#)
                .contains("not both")
        );
        assert!(
            serde_json::from_str::<BookRequestBody>(
                r#"{"best_available": {"count": 1, "seats": 2}, "user_id": "u"}"#
            )
            .is_err(),
            "unknown fields of an ask are refused"
        );
    }
}
