//! The demo data (`--demo`): the old service's two shows, and a real hall of 486
//! seats (stalls and circle, three price categories, aisles, an accessible row,
//! two seats not for sale) playing twice in the coming weeks.

use chrono::{Datelike, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::hall::LayoutRequest;
use crate::onsale::Window;
use crate::shows::NewShow;

/// Loads the demo shows, but only into a database without shows.
pub async fn load_demo(pool: &PgPool) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    // Two instances started with --demo at once must not both load it.
    sqlx::query("LOCK TABLE shows IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM shows)")
        .fetch_one(&mut *tx)
        .await?;
    if !empty {
        return Ok(false);
    }
    let free = "0.00".parse().map_err(anyhow::Error::msg)?;
    for (name, start, seats) in [
        ("Rock Concert 2025", "2025-12-31T20:00:00Z", 10),
        ("Jazz Night", "2025-12-15T19:30:00Z", 5),
    ] {
        let show = NewShow {
            name: name.into(),
            start_time: start.parse()?,
            plan: crate::hall::layout::uniform(seats, free, "EUR"),
            window: Window::default(),
            queue: None,
        };
        crate::shows::insert(&mut tx, &show).await?;
    }
    // Evenings one and two weeks from today, at 19:30 UTC.
    let today = Utc::now().date_naive();
    for (name, days) in [
        ("Beethoven's Ninth · Grand Hall", 7),
        ("The Magic Flute · Grand Hall", 14),
    ] {
        let day = today + Duration::days(days);
        let start = Utc
            .with_ymd_and_hms(day.year(), day.month(), day.day(), 19, 30, 0)
            .single()
            .ok_or_else(|| anyhow::anyhow!("no such time"))?;
        let layout: LayoutRequest = serde_json::from_value(grand_hall())?;
        let plan = layout
            .plan(usize::MAX)
            .map_err(|e| anyhow::anyhow!("the demo hall is invalid: {e}"))?;
        let show = NewShow {
            name: name.into(),
            start_time: start,
            plan,
            window: Window::default(),
            queue: None,
        };
        crate::shows::insert(&mut tx, &show).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Stalls of 13 rows split by a centre aisle, an accessible row at the back, and a
/// circle of 8 rows in three blocks.
fn grand_hall() -> Value {
    let numbers = |blocks: &[u32]| -> Value {
        let mut places = Vec::new();
        let mut n = 0;
        for (i, size) in blocks.iter().enumerate() {
            if i > 0 {
                places.push(Value::Null);
            }
            for _ in 0..*size {
                n += 1;
                places.push(json!(n));
            }
        }
        Value::Array(places)
    };
    let mut stalls: Vec<Value> = "ABCDEFGHJKLMN"
        .chars()
        .enumerate()
        .map(|(i, row)| {
            let category = if i < 5 { "premium" } else { "standard" };
            json!({"label": row.to_string(), "seats": numbers(&[11, 11]), "category": category})
        })
        .collect();
    stalls.push(json!({"label": "W", "seats": numbers(&[4, 4]), "accessible": true, "category": "standard"}));
    let circle: Vec<Value> = "ABCDEFGH"
        .chars()
        .enumerate()
        .map(|(i, row)| {
            let mut seats = numbers(&[6, 12, 6]);
            if i == 0 {
                // The lighting desk takes two seats of the circle's front row.
                for n in [12, 13] {
                    seats[n] = json!({"number": n, "blocked": true});
                }
            }
            let category = if i < 2 { "standard" } else { "balcony" };
            json!({"label": row.to_string(), "seats": seats, "category": category})
        })
        .collect();
    json!({
        "stage": {"label": "Stage", "at": "top"},
        "categories": [
            {"key": "premium", "name": "Premium", "price": "89.00", "currency": "EUR", "color": "#7b3fb5"},
            {"key": "standard", "name": "Standard", "price": "59.00", "currency": "EUR", "color": "#2f6fdf"},
            {"key": "balcony", "name": "Balcony", "price": "35.00", "currency": "EUR", "color": "#1d7a43"}
        ],
        "sections": [
            {"key": "stalls", "name": "Stalls", "rows": stalls},
            {"key": "circle", "name": "Circle", "rows": circle}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_hall_is_a_valid_layout_of_about_500_seats() {
        let layout: LayoutRequest = serde_json::from_value(grand_hall()).unwrap();
        let plan = layout.plan(100_000).unwrap();
        assert_eq!(plan.seats.len(), 13 * 22 + 8 + 8 * 24);
        assert_eq!(plan.seats.iter().filter(|s| s.blocked).count(), 2);
        assert_eq!(plan.seats.iter().filter(|s| s.accessible).count(), 8);
        assert_eq!(plan.categories.len(), 3);
    }
}
