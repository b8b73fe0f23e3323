//! What every instance hears of a show's change: its sale window, and its waiting
//! room's settings (`NOTIFY show_changes`, read by each instance's clock).

use sqlx::PgConnection;

use super::model::Show;
use crate::error::Result;
use crate::onsale::{QueueSettings, Window};

/// Gives the show a waiting room with these settings (keeping the places and
/// pacing of the one it has), or removes it; tells every instance.
pub(super) async fn set_queue(
    conn: &mut PgConnection,
    show_id: i64,
    queue: Option<&QueueSettings>,
    window: &Window,
) -> Result<()> {
    match queue {
        Some(q) => {
            q.check(window)?;
            sqlx::query(
                "INSERT INTO show_queues (show_id, admit_per_minute, max_active, pre_queue_opens_at, active_minutes, claim_secs)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (show_id) DO UPDATE SET admit_per_minute = $2, max_active = $3,
                     pre_queue_opens_at = $4, active_minutes = $5, claim_secs = $6",
            )
            .bind(show_id)
            .bind(q.admit_per_minute)
            .bind(q.max_active)
            .bind(q.pre_queue_opens_at)
            .bind(q.active_minutes)
            .bind(q.claim_secs)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM show_queues WHERE show_id = $1")
                .bind(show_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let news = serde_json::json!({"kind": "queue_settings", "show_id": show_id});
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(news.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells every instance (at commit) that the show's sale window is now this.
pub(super) async fn tell_window(conn: &mut PgConnection, show: &Show) -> Result<()> {
    let news = serde_json::json!({
        "kind": "window",
        "show_id": show.id,
        "sales_open_at": show.sales_open_at,
        "sales_close_at": show.sales_close_at,
        "sales": show.sales,
    });
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(news.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
