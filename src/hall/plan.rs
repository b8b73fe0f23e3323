//! A checked hall: every seat with its place, category and coordinates, as the
//! database stores it; and the plan `total_seats` makes.

use serde::{Deserialize, Serialize};

use super::price::Price;
use super::request::StageSide;

/// A checked layout: what the database stores for a show.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub outline: Outline,
    pub categories: Vec<Category>,
    /// In drawing order: section by section, row by row, left to right.
    pub seats: Vec<PlannedSeat>,
}

/// What is drawn around the seats: stored with the show, sent with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outline {
    pub stage: Stage,
    pub sections: Vec<SectionName>,
    /// The grid's size: seats have `0 <= x < width`, `0 <= y < height`.
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stage {
    pub label: String,
    pub at: StageSide,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionName {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub key: String,
    pub name: String,
    pub price: Price,
    pub currency: String,
    pub color: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSeat {
    pub seat_no: String,
    pub section: String,
    pub row: String,
    pub number: String,
    pub category: String,
    pub x: i32,
    pub y: i32,
    pub accessible: bool,
    pub blocked: bool,
}

/// Colours for categories that bring none: distinguishable, and dark enough for
/// white text and icons (WCAG AA against white).
pub(super) const PALETTE: [&str; 6] = [
    "#2f6fdf", "#b0420f", "#1d7a43", "#7b3fb5", "#a1306b", "#4d5b6a",
];

/// The plan `total_seats` makes: seats "1".."N" in one section of rows
/// `uniform_width(n)` wide, one category at `price`.
pub fn uniform(n: usize, price: Price, currency: &str) -> Plan {
    let width = uniform_width(n);
    let seats = (0..n)
        .map(|i| {
            let (r, c) = (i / width, i % width);
            PlannedSeat {
                seat_no: (i + 1).to_string(),
                section: "main".into(),
                row: row_label(r),
                number: (c + 1).to_string(),
                category: "standard".into(),
                x: c as i32,
                y: r as i32,
                accessible: false,
                blocked: false,
            }
        })
        .collect();
    Plan {
        outline: Outline {
            stage: Stage {
                label: "Stage".into(),
                at: StageSide::Top,
            },
            sections: vec![SectionName {
                key: "main".into(),
                name: "Hall".into(),
            }],
            width: width.min(n) as i32,
            height: n.div_ceil(width) as i32,
        },
        categories: vec![Category {
            key: "standard".into(),
            name: "Standard".into(),
            price,
            currency: currency.into(),
            color: PALETTE[0].into(),
        }],
        seats,
    }
}

/// Rows as wide as about twice their count (a hall is wider than deep), at least 10.
/// The migration that gave old shows their rows uses the same formula.
pub fn uniform_width(n: usize) -> usize {
    ((2.0 * n as f64).sqrt().ceil() as usize).max(10)
}

/// "A".."Z", then "AA".."ZZ", then numbers.
pub fn row_label(r: usize) -> String {
    let letter = |i: usize| char::from(b'A' + i as u8);
    match r {
        0..26 => letter(r).to_string(),
        26..702 => format!("{}{}", letter(r / 26 - 1), letter(r % 26)),
        _ => (r + 1).to_string(),
    }
}
