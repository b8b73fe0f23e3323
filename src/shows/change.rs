//! Changing a show (`PATCH /admin/shows/:id`): name, start time, sale window and
//! waiting room, in one transaction, told to every instance.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};

use super::model::{Show, checked_name, show_name};
use super::news::{set_queue, tell_window};
use super::read::fetch;
use crate::error::{Error, Result};
use crate::onsale::{self as sale, QueueRequest, QueueSettings, SalesState};

/// The body of `PATCH /admin/shows/:id`: what to change; absent fields stay as
/// they are, and `null` clears a side of the sale window.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowChangeRequest {
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = show_name, required = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, format = DateTime, required = false, example = "2025-12-31T20:00:00Z")]
    pub start_time: Option<String>,
    /// RFC 3339, or `null`: on sale at once.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable, required = false)]
    pub sales_open_at: Option<Option<String>>,
    /// RFC 3339, or `null`: the sale never closes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable, required = false)]
    pub sales_close_at: Option<Option<String>>,
    /// The waiting room's settings (all of them), or `null` to remove it. Its
    /// order, places and admissions stay as they are when the settings change.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<QueueRequest>, nullable, required = false)]
    pub queue: Option<Option<QueueRequest>>,
}

/// A field that may be absent, but not `null`.
fn given<'de, T, D>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// A field that is present, as `null` or a value (absent fields stay `None`).
fn present<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A checked [`ShowChangeRequest`].
#[derive(Debug, Default)]
pub struct ShowChange {
    pub name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub sales_open_at: Option<Option<DateTime<Utc>>>,
    pub sales_close_at: Option<Option<DateTime<Utc>>>,
    pub queue: Option<Option<QueueSettings>>,
}

impl ShowChange {
    pub fn parse(req: ShowChangeRequest) -> Result<ShowChange> {
        let name = req.name.as_deref().map(checked_name).transpose()?;
        let start_time = req
            .start_time
            .as_deref()
            .map(|t| sale::parse_instant("start_time", t))
            .transpose()?;
        let instant = |field: &str, value: Option<Option<String>>| match value {
            Some(Some(v)) => sale::parse_instant(field, &v).map(|t| Some(Some(t))),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        };
        Ok(ShowChange {
            name,
            start_time,
            sales_open_at: instant("sales_open_at", req.sales_open_at)?,
            sales_close_at: instant("sales_close_at", req.sales_close_at)?,
            queue: match &req.queue {
                Some(Some(q)) => Some(Some(QueueSettings::parse(q)?)),
                Some(None) => Some(None),
                None => None,
            },
        })
    }
}

/// Changes a show; a change of its sale window is told to every instance (their
/// on-sale clocks pass it on to the show's sessions).
pub async fn update(pool: &PgPool, id: i64, change: ShowChange) -> Result<Show> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE shows SET name = coalesce($2, name), start_time = coalesce($3, start_time),
             sales_open_at = CASE WHEN $4 THEN $5 ELSE sales_open_at END,
             sales_close_at = CASE WHEN $6 THEN $7 ELSE sales_close_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(&change.name)
    .bind(change.start_time)
    .bind(change.sales_open_at.is_some())
    .bind(change.sales_open_at.flatten())
    .bind(change.sales_close_at.is_some())
    .bind(change.sales_close_at.flatten())
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("shows_sales_window") => {
            Error::Validation("sales_close_at must be after sales_open_at".into())
        }
        _ => e.into(),
    })?;
    if updated.rows_affected() == 0 {
        return Err(Error::ShowNotFound(id));
    }
    if let Some(queue) = change.queue {
        let window = fetch(&mut tx, id).await?.window();
        set_queue(&mut tx, id, queue.as_ref(), &window).await?;
    }
    let show = fetch(&mut tx, id).await?;
    if change.sales_open_at.is_some() {
        reopen_queue(&mut tx, &show).await?;
    }
    // Every instance's pages of the show are stale (its name, time or window).
    tell_window(&mut tx, &show).await?;
    tx.commit().await?;
    Ok(show)
}

/// Keeps a waiting room true to a moved opening: its pre-queue must still open
/// before the sale, and a queue shuffled for an opening that has now moved later
/// is put back to a pre-queue (while nobody was let in; after that, refused).
async fn reopen_queue(conn: &mut PgConnection, show: &Show) -> Result<()> {
    let Some(queue) = &show.queue else {
        return Ok(());
    };
    queue.settings.check(&show.window())?;
    let later = matches!(show.sales, SalesState::Upcoming);
    if !later {
        return Ok(());
    }
    let admitted: Option<i64> = sqlx::query_scalar(
        "SELECT admitted_through FROM show_queues WHERE show_id = $1 AND shuffled_at IS NOT NULL FOR UPDATE",
    )
    .bind(show.id)
    .fetch_optional(&mut *conn)
    .await?;
    match admitted {
        None => Ok(()),
        Some(0) => {
            sqlx::query("UPDATE queue_places SET rank = NULL WHERE show_id = $1")
                .bind(show.id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "UPDATE show_queues SET shuffled_at = NULL, next_rank = 1, credit = 0 WHERE show_id = $1",
            )
            .bind(show.id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        Some(_) => Err(Error::Validation(
            "the waiting room has already let buyers in: its sale cannot open later now".into(),
        )),
    }
}
