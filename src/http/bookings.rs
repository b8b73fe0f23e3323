use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{ApiJson, BookingToken, Id};
use crate::booking::BookRequestBody;
use crate::error::Result;

pub async fn book(
    State(state): State<AppState>,
    Id(show_id): Id,
    ApiJson(body): ApiJson<BookRequestBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let req = state.bookings.validate(body)?;
    let booking = state.bookings.book(show_id, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "Booking created successfully", "booking": booking})),
    ))
}

pub async fn get(State(state): State<AppState>, Id(id): Id) -> Result<Json<Value>> {
    let booking = state.bookings.get(id).await?;
    Ok(Json(json!({"booking": booking})))
}

pub async fn confirm(
    State(state): State<AppState>,
    Id(id): Id,
    BookingToken(token): BookingToken,
) -> Result<Json<Value>> {
    let booking = state.bookings.confirm(id, token).await?;
    Ok(Json(
        json!({"message": "Booking confirmed", "booking": booking}),
    ))
}

pub async fn cancel(
    State(state): State<AppState>,
    Id(id): Id,
    BookingToken(token): BookingToken,
) -> Result<Json<Value>> {
    let booking = state.bookings.cancel(id, token).await?;
    Ok(Json(
        json!({"message": "Booking cancelled", "booking": booking}),
    ))
}
