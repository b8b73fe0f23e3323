use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::extract::{self, ApiJson, BookingToken, Id};
use crate::booking::BookRequestBody;
use crate::error::Result;

pub async fn book(
    State(state): State<AppState>,
    Id(show_id): Id,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BookRequestBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let key = extract::idempotency_key(&headers)?;
    let req = state.bookings.validate(body)?;
    let booking = state.bookings.book(show_id, req, key).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "Booking created successfully", "booking": booking})),
    ))
}

/// A booking and its seats. Who booked it (`user_id`) is shown only to a caller
/// with the booking's token or the admin token: ids are easy to count, and buyers'
/// identities are not for anyone who counts them.
pub async fn get(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let mut booking = state.bookings.get(id).await?;
    let admin = extract::has_admin_token(&headers, state.config.admin_token.as_deref());
    let holder = match extract::booking_token_header(&headers) {
        Some(token) if !admin => state.bookings.token_matches(id, token).await?,
        _ => false,
    };
    if !(admin || holder) {
        booking.user_id = None;
    }
    Ok(Json(json!({"booking": booking})))
}

pub async fn confirm(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
    BookingToken(token): BookingToken,
) -> Result<Json<Value>> {
    let key = extract::idempotency_key(&headers)?;
    let booking = state.bookings.confirm(id, token, key).await?;
    Ok(Json(
        json!({"message": "Booking confirmed", "booking": booking}),
    ))
}

pub async fn cancel(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
    BookingToken(token): BookingToken,
) -> Result<Json<Value>> {
    let key = extract::idempotency_key(&headers)?;
    let booking = state.bookings.cancel(id, token, key).await?;
    Ok(Json(
        json!({"message": "Booking cancelled", "booking": booking}),
    ))
}
