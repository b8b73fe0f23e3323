use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Admin, ApiJson, Id};
use crate::error::Result;
use crate::shows::{self, NewShow, NewShowRequest};

/// All shows, by start time.
#[utoipa::path(get, path = "/shows", tag = "shows",
    responses((status = 200, body = crate::http::openapi::ShowList), crate::http::openapi::Errors))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>> {
    let shows = shows::list(&state.pages).await?;
    Ok(Json(json!({"count": shows.len(), "shows": shows})))
}

/// One show with its hall: stage, sections and rows, categories with prices and
/// what is left of each.
#[utoipa::path(get, path = "/shows/{id}", tag = "shows", params(("id" = i64, Path, description = "The show's id", minimum = 1)),
    responses((status = 200, body = crate::http::openapi::ShowEnvelope), crate::http::openapi::Errors))]
pub async fn get(State(state): State<AppState>, Id(id): Id) -> Result<Json<Value>> {
    let show = shows::get_with_hall(&state.pages, id).await?;
    let mut show = serde_json::to_value(show).map_err(|e| crate::Error::Unexpected(e.into()))?;
    // What a seat map needs to enforce while the buyer selects.
    show["max_seats_per_booking"] = json!(state.config.max_seats_per_booking);
    Ok(Json(json!({"show": show})))
}

/// The seat map: every seat's status, version and place, in hall order.
#[utoipa::path(get, path = "/shows/{id}/seats", tag = "shows", params(("id" = i64, Path, description = "The show's id", minimum = 1)),
    responses((status = 200, body = crate::http::openapi::SeatList), crate::http::openapi::Errors))]
pub async fn seats(State(state): State<AppState>, Id(id): Id) -> Result<Json<Value>> {
    let seats = shows::seats(&state.pages, id).await?;
    Ok(Json(
        json!({"show_id": id, "count": seats.len(), "seats": seats}),
    ))
}

/// The show's hall as it never changes (places, categories, prices, drawing):
/// fetch it once, cache it by its ETag (immutable), and ask the WebSocket for live
/// state only with `?snapshot=state`.
#[utoipa::path(get, path = "/shows/{id}/layout", tag = "shows",
    params(("id" = i64, Path, description = "The show's id", minimum = 1),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client has")),
    responses((status = 200, body = crate::hall::Layout, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "The client's copy is current"),
        crate::http::openapi::Errors))]
pub async fn layout(
    State(state): State<AppState>,
    Id(id): Id,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response> {
    use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
    use axum::response::IntoResponse;
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let tag = crate::hall::layout_tag(&state.pages, id).await?;
    let cached = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if cached {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(ETAG, tag), (CACHE_CONTROL, IMMUTABLE.to_string())],
        )
            .into_response());
    }
    let layout = crate::hall::layout_of(&state.pages, id).await?;
    Ok((
        [(ETAG, tag), (CACHE_CONTROL, IMMUTABLE.to_string())],
        Json(layout),
    )
        .into_response())
}

/// Creates a show from a hall `layout`, or with seats "1".."N" (`total_seats`).
#[utoipa::path(post, path = "/admin/shows", tag = "admin",
    request_body(content = NewShowRequest, example = json!({"name": "Rock Concert 2025", "start_time": "2025-12-31T20:00:00Z", "total_seats": 100})),
    params(("Authorization" = Option<String>, Header, description = "Bearer <ADMIN_TOKEN>")),
    responses((status = 201, body = crate::http::openapi::ShowCreated), crate::http::openapi::Errors))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewShowRequest>,
) -> Result<(StatusCode, Json<Value>)> {
    let new = NewShow::parse(body, state.config.max_seats_per_show)?;
    let show = shows::create(&state.pool, new).await?;
    tracing::info!(show_id = show.id, seats = show.total_seats, "show created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "Show created successfully", "show": show})),
    ))
}
