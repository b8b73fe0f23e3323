//! Best available: which free seats to give a buyer who asked for "the best N".
//! Pure: the booking transaction reads which seats are free and locks what this
//! picks (see `booking::batch`).
//!
//! A choice is N seats side by side in one row (no aisle between them), all of the
//! asked category, accessible exactly when accessibility was asked for. Among the
//! choices, one that leaves no single free seat stranded (between it and a taken
//! seat, an aisle or the row's end) beats one that does; then the one whose seats
//! are nearest to the stage's centre wins (the sum of the seats' distances, plus a
//! small penalty for leaving a gap of odd size, see [`score`]). One pass
//! over the hall's seats per pick: O(seats), about a millisecond for 100,000.

use std::ops::Range;

use super::layout::StageSide;
use crate::error::{Error, Result};

/// A show's seats as best-available sees them, in their order in the show.
#[derive(Debug)]
pub struct Hall {
    seats: Vec<HallSeat>,
    /// Each row's seats, left to right.
    rows: Vec<Range<usize>>,
    categories: Vec<String>,
}

#[derive(Debug)]
struct HallSeat {
    id: i64,
    x: i32,
    category: u16,
    accessible: bool,
    blocked: bool,
    /// Distance to the stage's centre, in seats.
    cost: f64,
}

/// A seat as read from the database, in position order.
#[derive(sqlx::FromRow)]
pub struct HallSeatRow {
    pub id: i64,
    pub section: String,
    #[sqlx(rename = "row_label")]
    pub row: String,
    pub category: String,
    pub x: i32,
    pub y: i32,
    pub accessible: bool,
    pub blocked: bool,
}

/// What a buyer asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ask {
    pub count: usize,
    pub category: Option<String>,
    pub accessible: bool,
    pub allow_split: bool,
}

/// A window of seats and how good it is: how many single seats it strands, and its
/// cost (total distance, plus a penalty per odd gap; see [`score`]).
type Score = (u8, f64);

/// What leaving an odd gap costs, per seat of the window, in seat distances.
const ODD_GAP_PENALTY: f64 = 1.5;

impl Hall {
    pub fn new(rows: Vec<HallSeatRow>, stage: StageSide) -> Hall {
        let width = rows.iter().map(|s| s.x + 1).max().unwrap_or(0) as f64;
        let height = rows.iter().map(|s| s.y + 1).max().unwrap_or(0) as f64;
        let (sx, sy) = match stage {
            StageSide::Top => (width / 2.0, 0.0),
            StageSide::Bottom => (width / 2.0, height),
            StageSide::Left => (0.0, height / 2.0),
            StageSide::Right => (width, height / 2.0),
        };
        let mut categories: Vec<String> = Vec::new();
        let mut seats = Vec::with_capacity(rows.len());
        let mut ranges = Vec::new();
        let mut start = 0;
        for (i, row) in rows.iter().enumerate() {
            if i > 0 && (row.section != rows[i - 1].section || row.row != rows[i - 1].row) {
                ranges.push(start..i);
                start = i;
            }
            let category = match categories.iter().position(|c| *c == row.category) {
                Some(c) => c,
                None => {
                    categories.push(row.category.clone());
                    categories.len() - 1
                }
            };
            let (dx, dy) = (row.x as f64 + 0.5 - sx, row.y as f64 + 0.5 - sy);
            seats.push(HallSeat {
                id: row.id,
                x: row.x,
                category: category as u16,
                accessible: row.accessible,
                blocked: row.blocked,
                cost: dx.hypot(dy),
            });
        }
        if start < rows.len() {
            ranges.push(start..rows.len());
        }
        Hall {
            seats,
            rows: ranges,
            categories,
        }
    }

    pub fn len(&self) -> usize {
        self.seats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// The seat id at an index.
    pub fn id(&self, index: usize) -> i64 {
        self.seats[index].id
    }

    /// Picks seats for `ask` among those `free` (indexed like the show's seats in
    /// position order) and marks them taken there, so that picks made one after
    /// another never overlap. Returns the chosen seats' indices, left to right.
    pub fn pick(&self, free: &mut [bool], ask: &Ask) -> Result<Vec<usize>> {
        let category = match &ask.category {
            Some(key) => match self.categories.iter().position(|c| c == key) {
                Some(c) => Some(c as u16),
                None => {
                    return Err(Error::Validation(format!(
                        "this show has no category '{key}'; it has {}",
                        self.categories.join(", ")
                    )));
                }
            },
            None => None,
        };
        let eligible = |i: usize| {
            let s = &self.seats[i];
            !s.blocked && s.accessible == ask.accessible && category.is_none_or(|c| c == s.category)
        };
        let enough = (0..self.seats.len())
            .filter(|&i| free[i] && eligible(i))
            .take(ask.count)
            .count();
        if enough < ask.count {
            return Err(Error::NotEnoughSeats {
                count: ask.count,
                category: ask.category.clone(),
            });
        }
        if let Some(start) = self.best_window(free, ask.count, &eligible) {
            let chosen: Vec<usize> = (start..start + ask.count).collect();
            chosen.iter().for_each(|&i| free[i] = false);
            return Ok(chosen);
        }
        if !ask.allow_split {
            return Err(Error::NoAdjacentSeats {
                count: ask.count,
                category: ask.category.clone(),
            });
        }
        // Split: the largest group still possible, best placed, until all are found.
        let mut chosen = Vec::new();
        let mut size = ask.count;
        while chosen.len() < ask.count {
            size = size.min(ask.count - chosen.len());
            match self.best_window(free, size, &eligible) {
                Some(start) => {
                    for (i, f) in free.iter_mut().enumerate().skip(start).take(size) {
                        *f = false;
                        chosen.push(i);
                    }
                }
                None => size -= 1,
            }
        }
        chosen.sort_unstable();
        Ok(chosen)
    }

    /// The start of the best window of `n` adjacent free eligible seats.
    fn best_window(
        &self,
        free: &[bool],
        n: usize,
        eligible: &impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut best: Option<(Score, usize)> = None;
        for row in &self.rows {
            let mut i = row.start;
            while i < row.end {
                if !free[i] {
                    i += 1;
                    continue;
                }
                // A run of free seats with nothing between them: [a, b).
                let a = i;
                let mut b = i + 1;
                while b < row.end && free[b] && self.seats[b].x == self.seats[b - 1].x + 1 {
                    b += 1;
                }
                if b - a >= n {
                    let (mut cost, mut ineligible) = (0.0, 0usize);
                    for j in a..b {
                        cost += self.seats[j].cost;
                        ineligible += usize::from(!eligible(j));
                        if j >= a + n {
                            cost -= self.seats[j - n].cost;
                            ineligible -= usize::from(!eligible(j - n));
                        }
                        if j + 1 < a + n || ineligible > 0 {
                            continue;
                        }
                        let start = j + 1 - n;
                        let score = score(start - a, b - (start + n), n, cost);
                        if best.is_none_or(|(s, _)| better(score, s)) {
                            best = Some((score, start));
                        }
                    }
                }
                i = b;
            }
        }
        best.map(|(_, start)| start)
    }
}

/// A window of `n` seats that leaves `left` and `right` free seats beside it in its
/// run. A gap of one is a stranded seat: avoided whenever possible. An odd gap of
/// three or more strands one later, when pairs (the most common ask) fill it: a
/// 20-seat row sold in pairs from its centre (9 + 2 + 9) ends with two single
/// seats, sold from just off centre (8 + 2 + 10) it sells out. So an odd gap costs
/// as much as moving the group about one and a half seats further away: enough to
/// pick the tidy one of two nearly equal windows, not enough to send buyers to the
/// back of the hall.
fn score(left: usize, right: usize, n: usize, cost: f64) -> Score {
    let single = u8::from(left == 1) + u8::from(right == 1);
    let odd = usize::from(left > 1 && left % 2 == 1) + usize::from(right > 1 && right % 2 == 1);
    (single, cost + (odd * n) as f64 * ODD_GAP_PENALTY)
}

/// Strictly better: fewer stranded seats, then cheaper. Rounding noise in the
/// distances must not decide between equal choices, which keeps picks stable.
fn better(a: Score, b: Score) -> bool {
    if a.0 != b.0 {
        return a.0 < b.0;
    }
    a.1 < b.1 - 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hall from rows of text: `.` a free seat, `x` a taken one, `a` a free
    /// accessible one, `b` a free seat of category "B", ` ` an aisle.
    fn hall(rows: &[&str]) -> (Hall, Vec<bool>) {
        let mut seats = Vec::new();
        let mut free = Vec::new();
        for (y, row) in rows.iter().enumerate() {
            for (x, c) in row.chars().enumerate() {
                if c == ' ' {
                    continue;
                }
                seats.push(HallSeatRow {
                    id: seats.len() as i64 + 1,
                    section: "s".into(),
                    row: y.to_string(),
                    category: if c == 'b' { "B" } else { "A" }.into(),
                    x: x as i32,
                    y: y as i32,
                    accessible: c == 'a',
                    blocked: false,
                });
                free.push(c != 'x');
            }
        }
        (Hall::new(seats, StageSide::Top), free)
    }

    fn ask(count: usize) -> Ask {
        Ask {
            count,
            category: None,
            accessible: false,
            allow_split: false,
        }
    }

    /// The picked seats as (row, x).
    fn places(rows: &[&str], picked: &[usize]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for (y, row) in rows.iter().enumerate() {
            for (x, c) in row.chars().enumerate() {
                if c != ' ' {
                    all.push((y, x));
                }
            }
        }
        picked.iter().map(|&i| all[i]).collect()
    }

    #[test]
    fn an_empty_hall_gives_the_front_centre() {
        let rows = ["..........", ".........."];
        let (hall, mut free) = hall(&rows);
        let got = hall.pick(&mut free, &ask(2)).unwrap();
        assert_eq!(places(&rows, &got), [(0, 4), (0, 5)]);
    }

    #[test]
    fn a_single_seat_is_not_stranded_when_another_choice_avoids_it() {
        // Front row: the centre pair would leave one seat alone at x=3.
        let rows = ["xxx....xxx", ".........."];
        let (hall, mut free) = hall(&rows);
        let got = hall.pick(&mut free, &ask(3)).unwrap();
        // Three of the four: either end leaves one stranded, so the second row wins.
        assert_eq!(places(&rows, &got)[0].0, 1);
        let got = hall.pick(&mut free, &ask(2)).unwrap();
        assert_eq!(places(&rows, &got), [(0, 3), (0, 4)]);
    }

    #[test]
    fn an_aisle_separates_seats() {
        let rows = [".. ..", "xxxxx"];
        let (hall, mut free) = hall(&rows);
        assert!(matches!(
            hall.pick(&mut free, &ask(3)),
            Err(Error::NoAdjacentSeats { count: 3, .. })
        ));
        let split = Ask {
            allow_split: true,
            ..ask(3)
        };
        let got = hall.pick(&mut free, &split).unwrap();
        assert_eq!(got.len(), 3);
        assert!(matches!(
            hall.pick(&mut free, &ask(2)),
            Err(Error::NotEnoughSeats { .. })
        ));
    }

    #[test]
    fn categories_and_accessibility_are_respected() {
        let rows = ["aa....aa", "bbbbbbbb"];
        let (hall, mut free) = hall(&rows);
        let b = Ask {
            category: Some("B".into()),
            ..ask(2)
        };
        let got = hall.pick(&mut free, &b).unwrap();
        assert!(places(&rows, &got).iter().all(|p| p.0 == 1));
        let accessible = Ask {
            accessible: true,
            ..ask(2)
        };
        let got = hall.pick(&mut free, &accessible).unwrap();
        assert!(
            places(&rows, &got)
                .iter()
                .all(|p| p.0 == 0 && (p.1 < 2 || p.1 > 5))
        );
        // The four plain seats of row 0 are what is left for an ordinary ask of 4.
        let got = hall.pick(&mut free, &ask(4)).unwrap();
        assert_eq!(places(&rows, &got), [(0, 2), (0, 3), (0, 4), (0, 5)]);
        let unknown = Ask {
            category: Some("Z".into()),
            ..ask(1)
        };
        assert!(matches!(
            hall.pick(&mut free, &unknown),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn picks_one_after_another_never_overlap() {
        let rows = ["....................", "...................."];
        let (hall, mut free) = hall(&rows);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let got = hall.pick(&mut free, &ask(2)).unwrap();
            assert_eq!(got[1], got[0] + 1, "adjacent");
            for i in got {
                assert!(seen.insert(i), "seat {i} given twice");
            }
        }
        assert!(hall.pick(&mut free, &ask(1)).is_err());
    }

    #[test]
    fn a_20_by_20_hall_sells_out_in_200_pairs() {
        let row = ".".repeat(20);
        let rows: Vec<&str> = (0..20).map(|_| row.as_str()).collect();
        let (hall, mut free) = hall(&rows);
        for n in 0..200 {
            let got = hall
                .pick(&mut free, &ask(2))
                .unwrap_or_else(|e| panic!("pair {n}: {e}"));
            assert_eq!(places(&rows, &got)[0].0, places(&rows, &got)[1].0);
            assert_eq!(got[1], got[0] + 1);
        }
        assert!(free.iter().all(|f| !f));
    }
}
