//! A hall's layout as an organiser sends it (`POST /admin/shows` with `layout`):
//! the JSON shapes, as sent. `layout` checks them.

use serde::{Deserialize, Serialize};

/// The `layout` of a new show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    #[serde(default)]
    pub stage: Option<StageRequest>,
    pub categories: Vec<CategoryRequest>,
    pub sections: Vec<SectionRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    #[serde(default)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub key: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    #[serde(default)]
    pub color: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionRequest {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub x: Option<i64>,
    #[serde(default)]
    pub y: Option<i64>,
    pub rows: Vec<RowRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowRequest {
    pub label: String,
    pub seats: SeatsRequest,
    #[serde(default)]
    pub category: Option<String>,
    /// Empty places before the row's first seat; without it the row is centred.
    #[serde(default)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatRequest {
    pub number: crate::text::Text,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub accessible: Option<bool>,
    #[serde(default)]
    pub blocked: Option<bool>,
}
