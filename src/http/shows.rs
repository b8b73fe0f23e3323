use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Admin, ApiJson, Id};
use crate::error::Result;
use crate::shows::{self, NewShow, NewShowRequest};

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>> {
    let shows = shows::list(&state.pool).await?;
    Ok(Json(json!({"count": shows.len(), "shows": shows})))
}

pub async fn get(State(state): State<AppState>, Id(id): Id) -> Result<Json<Value>> {
    let show = shows::get_with_hall(&state.pool, id).await?;
    let mut show = serde_json::to_value(show).map_err(|e| crate::Error::Unexpected(e.into()))?;
    // What a seat map needs to enforce while the buyer selects.
    show["max_seats_per_booking"] = json!(state.config.max_seats_per_booking);
    Ok(Json(json!({"show": show})))
}

pub async fn seats(State(state): State<AppState>, Id(id): Id) -> Result<Json<Value>> {
    let seats = shows::seats(&state.pool, id).await?;
    Ok(Json(
        json!({"show_id": id, "count": seats.len(), "seats": seats}),
    ))
}

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
