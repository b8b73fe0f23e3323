//! Schemas of the request fields whose rules a `#[schema(...)]` attribute cannot
//! state: text the parser trims before counting it, and fields that take a string
//! or an integer. The request types name these with `schema_with`; each says
//! exactly what its parser accepts, since clients (and the contract test)
//! generate requests from them.

use serde_json::json;
use utoipa::PartialSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};

/// The characters `str::trim` removes (Unicode White_Space), as a regex class body.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Text that, trimmed, is 1 to `max` characters, none of them NUL.
fn trimmed(max: usize, nullable: bool) -> ObjectBuilder {
    let pattern = format!(
        "^[{SPACE}]*[^\\x00{SPACE}](?:[^\\x00]{{0,{}}}[^\\x00{SPACE}])?[{SPACE}]*$",
        max - 2
    );
    let types = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(types)
        .pattern(Some(pattern))
}

/// A string, or an integer standing for its decimal digits (`"7"` or `7`): what
/// `booking::Text` reads, any integer JSON can carry in 64 bits.
fn text_or_integer(max: usize, nullable: bool) -> ObjectBuilder {
    let mut types = vec![Type::String, Type::Integer];
    if nullable {
        types.push(Type::Null);
    }
    trimmed(max, false)
        .schema_type(SchemaType::from_iter(types))
        .minimum(Some(i64::MIN as isize))
        .maximum(Some(u64::MAX as usize))
}

/// A name: 1 to 100 characters once trimmed, none of them NUL.
pub fn name() -> Object {
    trimmed(100, false)
        .description(Some("1 to 100 characters once trimmed."))
        .build()
}

/// An optional name (left out, or `null`, for the default).
pub fn optional_name() -> Object {
    trimmed(100, true)
        .description(Some(
            "1 to 100 characters once trimmed; left out for the default.",
        ))
        .build()
}

/// A show's name: 1 to 200 characters once trimmed, none of them NUL.
pub fn show_name() -> Object {
    trimmed(200, false)
        .description(Some("1 to 200 characters once trimmed."))
        .examples([json!("Rock Concert 2025")])
        .build()
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

/// A seat's number in a hall's layout: 1 to 6 letters, digits, `_` or `.`, or an
/// integer written with at most 6 digits.
pub fn place_number() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
        .pattern(Some("^[A-Za-z0-9_.]{1,6}$"))
        .minimum(Some(0))
        .maximum(Some(999_999))
        .build()
}

/// A row's seats: how many (1 to 1000, numbered from 1), or its places in order
/// (at most 1000, at least one a seat): a number, a seat, or `null` for an aisle.
pub fn row_seats() -> RefOr<Schema> {
    let place = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(place_number())
        .item(crate::hall::layout::SeatRequest::schema());
    // utoipa has no `contains`; its extensions are written into the schema as given.
    let a_seat: Extensions = [("contains", json!({"type": ["string", "integer", "object"]}))]
        .into_iter()
        .collect();
    let places = ArrayBuilder::new()
        .items(place)
        .min_items(Some(1))
        .max_items(Some(1000))
        .extensions(Some(a_seat));
    let count = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(1000));
    let about = "How many seats (numbered from 1), or each place in order: a seat number, a \
                 seat with its own category or flags, or `null` for an aisle.";
    let seats = OneOfBuilder::new()
        .description(Some(about))
        .item(count)
        .item(places)
        .examples([
            json!(12),
            json!([1, 2, null, 3, {"number": 4, "accessible": true}]),
        ]);
    RefOr::T(Schema::OneOf(seats.build()))
}
