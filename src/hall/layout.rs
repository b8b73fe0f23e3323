//! The checks that turn a hall's layout as sent (`request`) into a [`Plan`] (`plan`):
//! every seat with its place, category and drawing coordinates. Pure: nothing here
//! touches the database.
//!
//! Coordinates are grid units, one per seat: `x` grows to the right, `y` away from
//! the top. Sections without `x`/`y` are stacked top to bottom in the order given,
//! one empty row apart, and centred; rows are centred in their section unless they
//! give an `offset`.

use std::collections::{HashMap, HashSet};

use super::plan::PALETTE;
pub use super::plan::{
    Category, Outline, Plan, PlannedSeat, SectionName, Stage, row_label, uniform, uniform_width,
};
use super::price::Price;
pub use super::request::{
    CategoryRequest, LayoutRequest, PlaceRequest, RowRequest, SeatRequest, SeatsRequest,
    SectionRequest, StageRequest, StageSide,
};
use crate::error::{Error, Result};

/// Most places in one row, and most rows in one section.
const MAX_ROW: i64 = 1000;
const MAX_COORD: i64 = 100_000;

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidField {
        path: path.into(),
        message: message.into(),
    }
}

fn check_key(path: &str, key: &str, max: usize) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= max
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("must be 1 to {max} letters, digits, '_' or '.'"),
        ))
    }
}

fn check_name(path: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains('\0') {
        return Err(invalid(
            path,
            "must be 1 to 100 characters, none of them NUL",
        ));
    }
    Ok(name.to_string())
}

impl LayoutRequest {
    /// Checks the layout; `max_seats` is `MAX_SEATS_PER_SHOW`.
    pub fn plan(self, max_seats: usize) -> Result<Plan> {
        let categories = categories(&self.categories)?;
        let keys: HashSet<&str> = categories.iter().map(|c| c.key.as_str()).collect();
        let only = (categories.len() == 1).then(|| categories[0].key.clone());
        if self.sections.is_empty() {
            return Err(invalid("layout.sections", "must list at least one section"));
        }
        if self.sections.len() > 100 {
            return Err(invalid("layout.sections", "at most 100 sections"));
        }
        // Counted before anything is built: a small body can ask for millions of
        // seats ("seats": 1000 in a thousand rows), which must cost nothing to refuse.
        if self.seat_count() > max_seats {
            return Err(invalid(
                "layout.sections",
                format!("more than MAX_SEATS_PER_SHOW ({max_seats}) seats"),
            ));
        }
        let mut placed = Vec::new();
        let mut section_keys = HashSet::new();
        let mut total = 0usize;
        for (i, section) in self.sections.iter().enumerate() {
            let path = format!("layout.sections[{i}]");
            check_key(&format!("{path}.key"), &section.key, 12)?;
            if !section_keys.insert(section.key.as_str()) {
                return Err(invalid(
                    format!("{path}.key"),
                    format!("section '{}' is listed twice", section.key),
                ));
            }
            let default = section.category.clone().or_else(|| only.clone());
            let rows = rows(&path, section, default.as_deref(), &keys)?;
            total += rows
                .iter()
                .map(|r| r.places.iter().flatten().count())
                .sum::<usize>();
            if total > max_seats {
                return Err(invalid(
                    "layout.sections",
                    format!("more than MAX_SEATS_PER_SHOW ({max_seats}) seats"),
                ));
            }
            placed.push(rows);
        }
        let stage = Stage {
            label: match self.stage.as_ref().and_then(|s| s.label.as_deref()) {
                Some(label) => check_name("layout.stage.label", label)?,
                None => "Stage".into(),
            },
            at: self.stage.and_then(|s| s.at).unwrap_or_default(),
        };
        let mut sections = Vec::new();
        for (i, s) in self.sections.iter().enumerate() {
            let name = match &s.name {
                Some(name) => check_name(&format!("layout.sections[{i}].name"), name)?,
                None => s.key.clone(),
            };
            sections.push(SectionName {
                key: s.key.clone(),
                name,
            });
        }
        let (seats, width, height) = arrange(&self.sections, placed)?;
        Ok(Plan {
            outline: Outline {
                stage,
                sections,
                width,
                height,
            },
            categories,
            seats,
        })
    }
}

impl LayoutRequest {
    /// How many seats the layout asks for (counts that are out of range count as
    /// zero here; the row's own check refuses them).
    fn seat_count(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| match &r.seats {
                SeatsRequest::Count(n) => usize::try_from(*n).unwrap_or(0),
                SeatsRequest::List(places) => places.iter().flatten().count(),
            })
            .fold(0usize, usize::saturating_add)
    }
}

fn categories(requested: &[CategoryRequest]) -> Result<Vec<Category>> {
    if requested.is_empty() || requested.len() > 32 {
        return Err(invalid("layout.categories", "must list 1 to 32 categories"));
    }
    let mut seen = HashSet::new();
    let mut out: Vec<Category> = Vec::new();
    for (i, c) in requested.iter().enumerate() {
        let path = format!("layout.categories[{i}]");
        check_key(&format!("{path}.key"), &c.key, 16)?;
        if !seen.insert(c.key.as_str()) {
            return Err(invalid(
                format!("{path}.key"),
                format!("category '{}' is listed twice", c.key),
            ));
        }
        let price: Price = c
            .price
            .parse()
            .map_err(|e: String| invalid(format!("{path}.price"), e))?;
        let currency_ok =
            c.currency.len() == 3 && c.currency.chars().all(|c| c.is_ascii_uppercase());
        if !currency_ok {
            return Err(invalid(
                format!("{path}.currency"),
                "must be an ISO 4217 code such as EUR",
            ));
        }
        if let Some(first) = out.first()
            && first.currency != c.currency
        {
            return Err(invalid(
                format!("{path}.currency"),
                format!(
                    "every category of a show must use one currency ({})",
                    first.currency
                ),
            ));
        }
        let color = match &c.color {
            Some(color) => {
                let ok = color.len() == 7
                    && color.starts_with('#')
                    && color[1..].chars().all(|c| c.is_ascii_hexdigit());
                if !ok {
                    return Err(invalid(format!("{path}.color"), "must be #rrggbb"));
                }
                color.clone()
            }
            None => PALETTE[i % PALETTE.len()].to_string(),
        };
        out.push(Category {
            key: c.key.clone(),
            name: check_name(&format!("{path}.name"), &c.name)?,
            price,
            currency: c.currency.clone(),
            color,
        });
    }
    Ok(out)
}

/// A row's places before they are placed in the hall: `None` is an empty place.
struct PlacedRow {
    offset: Option<i64>,
    places: Vec<Option<PlannedSeat>>,
}

fn rows(
    path: &str,
    section: &SectionRequest,
    default: Option<&str>,
    keys: &HashSet<&str>,
) -> Result<Vec<PlacedRow>> {
    if section.rows.is_empty() {
        return Err(invalid(
            format!("{path}.rows"),
            "a section needs at least one row",
        ));
    }
    if section.rows.len() as i64 > MAX_ROW {
        return Err(invalid(
            format!("{path}.rows"),
            format!("at most {MAX_ROW} rows"),
        ));
    }
    let category = |path: &str, asked: Option<&str>| -> Result<String> {
        match asked.or(default) {
            Some(key) if keys.contains(key) => Ok(key.to_string()),
            Some(key) => Err(invalid(path, format!("unknown category '{key}'"))),
            None => Err(invalid(
                path,
                "needs a category (on the seat, its row or its section)",
            )),
        }
    };
    let mut labels = HashSet::new();
    let mut out = Vec::new();
    for (r, row) in section.rows.iter().enumerate() {
        let path = format!("{path}.rows[{r}]");
        check_key(&format!("{path}.label"), &row.label, 4)?;
        if !labels.insert(row.label.as_str()) {
            return Err(invalid(
                format!("{path}.label"),
                format!("row '{}' is listed twice in this section", row.label),
            ));
        }
        if let Some(offset) = row.offset
            && !(0..=MAX_ROW).contains(&offset)
        {
            return Err(invalid(
                format!("{path}.offset"),
                format!("must be 0 to {MAX_ROW}"),
            ));
        }
        let row_category = category(&path, row.category.as_deref())?;
        let seat = |number: String, cat: String, accessible: bool, blocked: bool| PlannedSeat {
            seat_no: format!("{}-{}-{}", section.key, row.label, number),
            section: section.key.clone(),
            row: row.label.clone(),
            number,
            category: cat,
            x: 0,
            y: 0,
            accessible,
            blocked,
        };
        let places: Vec<Option<PlannedSeat>> = match &row.seats {
            SeatsRequest::Count(n) if (1..=MAX_ROW).contains(n) => (1..=*n)
                .map(|i| {
                    Some(seat(
                        i.to_string(),
                        row_category.clone(),
                        row.accessible,
                        row.blocked,
                    ))
                })
                .collect(),
            SeatsRequest::Count(_) => {
                return Err(invalid(
                    format!("{path}.seats"),
                    format!("must be 1 to {MAX_ROW}"),
                ));
            }
            SeatsRequest::List(list) => {
                if list.len() as i64 > MAX_ROW {
                    return Err(invalid(
                        format!("{path}.seats"),
                        format!("at most {MAX_ROW} places"),
                    ));
                }
                let mut numbers = HashSet::new();
                let mut places = Vec::new();
                for (i, place) in list.iter().enumerate() {
                    let path = format!("{path}.seats[{i}]");
                    let Some(place) = place else {
                        places.push(None);
                        continue;
                    };
                    let (number, cat, accessible, blocked) = match place {
                        PlaceRequest::Number(n) => (n.0.clone(), None, None, None),
                        PlaceRequest::Seat(s) => (
                            s.number.0.clone(),
                            s.category.as_deref(),
                            s.accessible,
                            s.blocked,
                        ),
                    };
                    check_key(&format!("{path}.number"), &number, 6)?;
                    if !numbers.insert(number.clone()) {
                        return Err(invalid(
                            path,
                            format!("seat {number} is listed twice in this row"),
                        ));
                    }
                    let cat = match cat {
                        Some(_) => category(&path, cat)?,
                        None => row_category.clone(),
                    };
                    places.push(Some(seat(
                        number,
                        cat,
                        accessible.unwrap_or(row.accessible),
                        blocked.unwrap_or(row.blocked),
                    )));
                }
                places
            }
        };
        if places.iter().all(Option::is_none) {
            return Err(invalid(
                format!("{path}.seats"),
                "a row needs at least one seat",
            ));
        }
        out.push(PlacedRow {
            offset: row.offset,
            places,
        });
    }
    Ok(out)
}

/// Gives every seat its coordinates; returns the seats and the grid's size.
fn arrange(
    sections: &[SectionRequest],
    placed: Vec<Vec<PlacedRow>>,
) -> Result<(Vec<PlannedSeat>, i32, i32)> {
    let row_width = |r: &PlacedRow| r.offset.unwrap_or(0) + r.places.len() as i64;
    let widths: Vec<i64> = placed
        .iter()
        .map(|rows| rows.iter().map(row_width).max().unwrap_or(0))
        .collect();
    let stacked_width = sections
        .iter()
        .zip(&widths)
        .filter(|(s, _)| s.x.is_none())
        .map(|(_, w)| *w)
        .max()
        .unwrap_or(0);
    let mut seats = Vec::new();
    let mut taken: HashMap<(i64, i64), String> = HashMap::new();
    let mut next_y = 0i64;
    for (i, ((section, rows), width)) in sections.iter().zip(placed).zip(&widths).enumerate() {
        let path = format!("layout.sections[{i}]");
        for (name, v) in [("x", section.x), ("y", section.y)] {
            if let Some(v) = v
                && !(0..=MAX_COORD).contains(&v)
            {
                return Err(invalid(
                    format!("{path}.{name}"),
                    format!("must be 0 to {MAX_COORD}"),
                ));
            }
        }
        let left = section.x.unwrap_or((stacked_width - width) / 2);
        let top = section.y.unwrap_or(next_y);
        let bottom = top + rows.len() as i64;
        for (r, row) in rows.into_iter().enumerate() {
            let start = row.offset.unwrap_or((width - row.places.len() as i64) / 2);
            let y = top + r as i64;
            for (p, place) in row.places.into_iter().enumerate() {
                let Some(mut seat) = place else { continue };
                let x = left + start + p as i64;
                if let Some(other) = taken.insert((x, y), seat.seat_no.clone()) {
                    return Err(invalid(
                        format!("{path}.rows[{r}]"),
                        format!(
                            "seat {} would be drawn on top of seat {other}",
                            seat.seat_no
                        ),
                    ));
                }
                seat.x = x as i32;
                seat.y = y as i32;
                seats.push(seat);
            }
        }
        // The next stacked section starts one empty row below this one.
        next_y = next_y.max(bottom + 1);
    }
    let width = seats.iter().map(|s| s.x + 1).max().unwrap_or(0);
    let height = seats.iter().map(|s| s.y + 1).max().unwrap_or(0);
    Ok((seats, width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(layout: serde_json::Value, max: usize) -> Result<Plan> {
        serde_json::from_value::<LayoutRequest>(layout)
            .expect("a layout")
            .plan(max)
    }

    fn one_category() -> serde_json::Value {
        serde_json::json!([{"key": "A", "name": "All", "price": "10.00", "currency": "EUR"}])
    }

    #[test]
    fn a_million_seats_in_a_small_body_are_refused_before_anything_is_built() {
        let rows: Vec<_> = (0..1000)
            .map(|r| serde_json::json!({"label": format!("R{r}"), "seats": 1000}))
            .collect();
        let layout = serde_json::json!({"categories": one_category(), "sections": [{"key": "s", "rows": rows}]});
        let started = std::time::Instant::now();
        match plan(layout, 100_000) {
            Err(Error::InvalidField { path, message }) => {
                assert_eq!(path, "layout.sections");
                assert!(message.contains("MAX_SEATS_PER_SHOW"));
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn rows_are_centred_sections_stacked_and_seats_inherit_their_flags() {
        let layout = serde_json::json!({
            "categories": [
                {"key": "A", "name": "A", "price": "10", "currency": "EUR"},
                {"key": "B", "name": "B", "price": "5", "currency": "EUR"}
            ],
            "sections": [
                {"key": "s", "category": "A", "rows": [
                    {"label": "A", "seats": 6},
                    {"label": "B", "seats": [1, null, {"number": 2, "category": "B", "blocked": true}], "accessible": true}
                ]},
                {"key": "t", "category": "B", "rows": [{"label": "A", "seats": 2}]}
            ]
        });
        let plan = plan(layout, 100).unwrap();
        let at = |no: &str| {
            let s = plan.seats.iter().find(|s| s.seat_no == no).unwrap();
            (s.x, s.y)
        };
        assert_eq!(at("s-A-1"), (0, 0));
        assert_eq!(at("s-B-1"), (1, 1), "a 3-place row centred under 6 seats");
        assert_eq!(at("s-B-2"), (3, 1), "the aisle is an empty place");
        assert_eq!(
            at("t-A-1"),
            (2, 3),
            "the next section one row down, centred"
        );
        let b2 = plan.seats.iter().find(|s| s.seat_no == "s-B-2").unwrap();
        assert_eq!(
            (b2.category.as_str(), b2.accessible, b2.blocked),
            ("B", true, true)
        );
        assert_eq!((plan.outline.width, plan.outline.height), (6, 4));
    }

    #[test]
    fn total_seats_make_rows_about_twice_as_wide_as_deep() {
        let plan = uniform(240, Price::default(), "EUR");
        assert_eq!(uniform_width(240), 22);
        assert_eq!(plan.seats[22].seat_no, "23");
        assert_eq!(
            (plan.seats[22].row.as_str(), plan.seats[22].number.as_str()),
            ("B", "1")
        );
        assert_eq!(row_label(25), "Z");
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(701), "ZZ");
        assert_eq!(row_label(702), "703");
    }
}
