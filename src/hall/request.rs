//! A hall's layout as an organiser sends it (`POST /admin/shows` with `layout`):
//! the JSON shapes, as sent. `layout` checks them.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::PartialSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};

use crate::text::trimmed;

/// The `layout` of a new show. Besides what each field says: category keys,
/// section keys, row labels within a section and seat numbers within a row are
/// each used once; every category of a show has the same currency; a category a
/// section, row or seat names is one of `categories` (with several categories,
/// every seat needs one); sections placed with `x`/`y` do not overlap; and the
/// seats add up to at most `MAX_SEATS_PER_SHOW`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    #[serde(default)]
    pub stage: Option<StageRequest>,
    #[schema(min_items = 1, max_items = 32)]
    pub categories: Vec<CategoryRequest>,
    #[schema(min_items = 1, max_items = 100)]
    pub sections: Vec<SectionRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// `Stage` when left out.
    #[serde(default)]
    #[schema(schema_with = optional_name)]
    pub label: Option<String>,
    /// Which side of the hall the stage is on: `top` (the default), `bottom`,
    /// `left` or `right`. Best-available seats are the ones nearest to it.
    #[serde(default)]
    pub at: Option<StageSide>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageSide {
    #[default]
    Top,
    Bottom,
    Left,
    Right,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    #[schema(pattern = "^[A-Za-z0-9_.]{1,16}$", example = "stalls")]
    pub key: String,
    #[schema(schema_with = name)]
    pub name: String,
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,3})?$", example = "45.00")]
    pub price: String,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    /// `#rrggbb`; one of a palette when left out.
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub color: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionRequest {
    #[schema(pattern = "^[A-Za-z0-9_.]{1,12}$")]
    pub key: String,
    /// The key when left out.
    #[serde(default)]
    #[schema(schema_with = optional_name)]
    pub name: Option<String>,
    /// The category of its seats that name none of their own.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.]{1,16}$")]
    pub category: Option<String>,
    /// Where the section is in the hall; without `x` and `y` sections are
    /// stacked in the order given.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    pub x: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    pub y: Option<i64>,
    #[schema(min_items = 1, max_items = 1000)]
    pub rows: Vec<RowRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowRequest {
    #[schema(pattern = "^[A-Za-z0-9_.]{1,4}$")]
    pub label: String,
    #[schema(schema_with = row_seats)]
    pub seats: SeatsRequest,
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.]{1,16}$")]
    pub category: Option<String>,
    /// Empty places before the row's first seat; without it the row is centred.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub offset: Option<i64>,
    #[serde(default)]
    pub accessible: bool,
    #[serde(default)]
    pub blocked: bool,
}

/// A row's seats: how many (numbered from 1), or each place in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SeatsRequest {
    Count(i64),
    List(Vec<Option<PlaceRequest>>),
}

/// One place of a row given as a list: a seat number, a seat with its own
/// category or flags, or `null` for an empty place (an aisle).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PlaceRequest {
    Number(crate::text::Text),
    Seat(SeatRequest),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatRequest {
    #[schema(schema_with = place_number)]
    pub number: crate::text::Text,
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.]{1,16}$")]
    pub category: Option<String>,
    #[serde(default)]
    pub accessible: Option<bool>,
    #[serde(default)]
    pub blocked: Option<bool>,
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
        .item(SeatRequest::schema());
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
