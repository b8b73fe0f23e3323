//! Who may buy at all, before any seat is looked at: the show's sale window, and
//! its waiting room's admissions. Read in the booking transaction, by its `now()`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::onsale::Window;

/// What the gate reads, once per batch.
#[derive(sqlx::FromRow)]
pub(super) struct Gate {
    #[sqlx(flatten)]
    window: Window,
    now: DateTime<Utc>,
    /// Whether the show has a waiting room.
    queued: bool,
    /// The batch's admissions that are live now.
    admitted: Vec<String>,
}

impl Gate {
    /// `admissions`: the buyers whose admissions the batch's bookings carry.
    pub(super) async fn read(
        conn: &mut PgConnection,
        show_id: i64,
        admissions: &[&str],
    ) -> Result<Gate> {
        let gate: Option<Gate> = sqlx::query_as(
            "SELECT s.sales_open_at, s.sales_close_at, now() AS now,
                    EXISTS (SELECT 1 FROM show_queues q WHERE q.show_id = s.id) AS queued,
                    ARRAY(SELECT buyer FROM queue_places p
                          WHERE p.show_id = s.id AND p.buyer = ANY($2)
                            AND p.state = 'admitted' AND p.admitted_until > now()) AS admitted
             FROM shows s WHERE s.id = $1",
        )
        .bind(show_id)
        .bind(admissions)
        .fetch_optional(&mut *conn)
        .await?;
        gate.ok_or(Error::ShowNotFound(show_id))
    }

    /// Whether the show has a waiting room (bookings then record their admission).
    pub(super) fn queued(&self) -> bool {
        self.queued
    }

    /// Each booking's pass, in order, by the admission it carries.
    pub(super) fn check<'a>(
        &self,
        carried: impl Iterator<Item = Option<&'a str>>,
    ) -> Vec<Result<()>> {
        let admitted: HashSet<&str> = self.admitted.iter().map(String::as_str).collect();
        let mut used = HashSet::new();
        carried
            .map(|a| {
                self.lets_in(a, &admitted)?;
                // One booking per admission and batch: twenty sent at once on one
                // admission would otherwise all pass before the first ends it.
                match a {
                    Some(buyer) if self.queued && !used.insert(buyer) => {
                        Err(Error::AdmissionInvalid(
                            "this admission is booking already: one booking at a time".into(),
                        ))
                    }
                    _ => Ok(()),
                }
            })
            .collect()
    }

    fn lets_in(&self, admission: Option<&str>, admitted: &HashSet<&str>) -> Result<()> {
        self.window.admits(self.now)?;
        if !self.queued {
            return Ok(());
        }
        match admission {
            None => Err(Error::AdmissionRequired),
            Some(buyer) if admitted.contains(buyer) => Ok(()),
            Some(_) => Err(Error::AdmissionInvalid(
                "the admission has ended (its time ran out, or its holds were confirmed or released)"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(queued: bool, admitted: &[&str], opens_in_secs: i64) -> Gate {
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        Gate {
            window: Window {
                sales_open_at: Some(now + chrono::Duration::seconds(opens_in_secs)),
                sales_close_at: None,
            },
            now,
            queued,
            admitted: admitted.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn pass(gate: &Gate, admission: Option<&str>) -> Result<()> {
        let admitted = gate.admitted.iter().map(String::as_str).collect();
        gate.lets_in(admission, &admitted)
    }

    #[test]
    fn a_waiting_room_lets_in_live_admissions_only() {
        let open = gate(true, &["alice"], 0);
        assert!(pass(&open, Some("alice")).is_ok());
        assert!(matches!(pass(&open, None), Err(Error::AdmissionRequired)));
        assert!(matches!(
            pass(&open, Some("bob")),
            Err(Error::AdmissionInvalid(_))
        ));
        let free = gate(false, &[], 0);
        assert!(
            pass(&free, None).is_ok(),
            "no waiting room, no admission needed"
        );
        assert!(pass(&free, Some("bob")).is_ok());
    }

    #[test]
    fn one_admission_books_once_per_batch() {
        let open = gate(true, &["alice"], 0);
        let passes = open.check([Some("alice"), Some("alice"), None].into_iter());
        assert!(passes[0].is_ok());
        assert!(matches!(passes[1], Err(Error::AdmissionInvalid(_))));
        assert!(matches!(passes[2], Err(Error::AdmissionRequired)));
    }

    #[test]
    fn the_window_comes_first() {
        let early = gate(true, &["alice"], 60);
        assert!(matches!(
            pass(&early, Some("alice")),
            Err(Error::SaleNotOpen { .. })
        ));
    }
}
