use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::client::ClientIp;
use super::extract::{
    self, ApiJson, BookingId, BookingToken, Caller, CredentialHeaders, Id, IdempotencyKeyHeader,
    ShowId, TokenBody,
};
use super::openapi::Errors;
use super::responses::{BookingChanged, BookingCreated, BookingEnvelope, BuyerBookings};
use crate::auth::Buyer;
use crate::booking::{BookRequestBody, BookingDetails, Credential, IdempotencyKey, StatusChange};
use crate::error::{Error, Result};

/// Books seats (all or none), or the best N: `seat_nos` or `best_available`.
/// `immediate_confirm: false` makes a hold that expires unless confirmed.
#[utoipa::path(post, path = "/shows/{id}/book", tag = "bookings",
    params(ShowId, IdempotencyKeyHeader,
        ("Authorization" = Option<String>, Header, description = "Bearer <JWT> (AUTH=jwt)"),
        ("X-Admission-Token" = Option<String>, Header, description = "A show with a waiting room: the admission it gave this buyer"),
        ("X-Queue-Id" = Option<String>, Header, description = "AUTH=none, with X-Admission-Token: the queue id the admission was given to")),
    request_body(content = BookRequestBody, example = json!({"seat_nos": ["7", "8"], "user_id": "alice", "immediate_confirm": true})),
    responses((status = 201, body = BookingCreated), Errors))]
pub async fn book(
    State(state): State<AppState>,
    Id(show_id): Id,
    Caller(buyer): Caller,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BookRequestBody>,
) -> Result<(StatusCode, Json<BookingCreated>)> {
    let key = idempotency_key(&headers, buyer.as_ref())?;
    let mut req = state.bookings.validate(body, buyer.as_ref(), client)?;
    req.admission = super::queue::admission(&state, show_id, &headers, buyer.as_ref())?;
    let booking = state.bookings.book(show_id, req, key).await?;
    Ok((StatusCode::CREATED, Json(BookingCreated::new(booking))))
}

/// A booking and its seats. With `AUTH=none`, who booked it (`user_id`) is shown
/// only to a caller with the booking's token or the admin token: ids are easy to
/// count, and buyers' identities are not for anyone who counts them. With
/// `AUTH=jwt`, the booking is shown only to its owner, a holder of its token or the
/// admin, and is 404 to anyone else, so ids reveal nothing. Never the token.
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings",
    params(BookingId,
        ("X-Booking-Token" = Option<String>, Header, description = "The booking's token")),
    responses((status = 200, body = BookingEnvelope), Errors))]
pub async fn get(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Json<BookingEnvelope>> {
    let admin = extract::has_admin_token(&headers, state.config.admin_token.as_deref());
    let buyer = if admin {
        None
    } else {
        state.config.auth.buyer(extract::bearer(&headers))?
    };
    let mut booking = state.bookings.get(id).await?;
    let token = if buyer.is_some() {
        extract::header_token(&headers)
    } else {
        extract::booking_token_header(&headers)
    };
    let holder = match token {
        Some(token) if !admin => state.bookings.token_matches(id, token).await?,
        _ => false,
    };
    let owner = buyer
        .as_ref()
        .is_some_and(|b| booking.user_id.as_deref() == Some(b.id.as_str()));
    match (admin || holder || owner, state.config.auth.is_jwt()) {
        (true, _) => {}
        (false, true) => return Err(Error::BookingNotFound(id)),
        (false, false) => booking.user_id = None,
    }
    Ok(Json(BookingEnvelope { booking }))
}

/// Turns a hold into a sale. Needs the booking's token (or, with AUTH=jwt, its owner).
#[utoipa::path(post, path = "/bookings/{id}/confirm", tag = "bookings",
    params(BookingId, CredentialHeaders, IdempotencyKeyHeader),
    request_body(content = Option<TokenBody>, description = "Optional: the token in the body instead of a header"),
    responses((status = 200, body = BookingChanged), Errors))]
pub async fn confirm(State(state): State<AppState>, req: Change) -> Result<Json<BookingChanged>> {
    let booking = req.run(&state, StatusChange::Confirm).await?;
    Ok(Json(BookingChanged::confirmed(booking)))
}

/// Cancels a hold or a sale and frees its seats. Needs the token (or the owner).
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "bookings",
    params(BookingId, CredentialHeaders, IdempotencyKeyHeader),
    request_body(content = Option<TokenBody>, description = "Optional: the token in the body instead of a header"),
    responses((status = 200, body = BookingChanged), Errors))]
pub async fn cancel(State(state): State<AppState>, req: Change) -> Result<Json<BookingChanged>> {
    let booking = req.run(&state, StatusChange::Cancel).await?;
    Ok(Json(BookingChanged::cancelled(booking)))
}

/// A confirm or cancel as asked: which booking, by what right, under which key.
/// Checked path, caller, body, key, then credential, so that a request with
/// several faults is told of the same one as ever.
pub struct Change {
    id: i64,
    credential: Credential,
    key: Option<IdempotencyKey>,
}

impl Change {
    async fn run(self, state: &AppState, change: StatusChange) -> Result<BookingDetails> {
        let Change {
            id,
            credential,
            key,
        } = self;
        state
            .bookings
            .change_status(change, id, credential, key)
            .await
    }
}

impl FromRequest<AppState> for Change {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Change> {
        let (mut parts, body) = req.into_parts();
        let Id(id) = Id::from_request_parts(&mut parts, state).await?;
        let Caller(buyer) = Caller::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
        let BookingToken(token) = BookingToken::from_request(req, state).await?;
        let key = idempotency_key(&headers, buyer.as_ref())?;
        let credential = Credential::of(token, buyer).ok_or_else(|| {
            Error::Unauthorized(
                "this needs the booking's token: send X-Booking-Token: <token>, Authorization: Bearer <token> or {\"token\": \"...\"}".into(),
            )
        })?;
        Ok(Change {
            id,
            credential,
            key,
        })
    }
}

/// AUTH=jwt: the signed-in buyer's bookings, newest first (the latest 200).
#[utoipa::path(get, path = "/me/bookings", tag = "bookings",
    params(("Authorization" = Option<String>, Header, description = "Bearer <JWT>")),
    responses((status = 200, body = BuyerBookings), Errors))]
pub async fn mine(
    State(state): State<AppState>,
    Caller(buyer): Caller,
) -> Result<Json<BuyerBookings>> {
    let buyer = buyer.ok_or_else(|| {
        Error::Unauthorized("buyers are not signed in on this server (AUTH=none)".into())
    })?;
    let bookings = state.bookings.of_buyer(&buyer.id).await?;
    Ok(Json(BuyerBookings::new(bookings)))
}

fn idempotency_key(headers: &HeaderMap, buyer: Option<&Buyer>) -> Result<Option<IdempotencyKey>> {
    Ok(extract::idempotency_key(headers)?.map(|key| key.for_buyer(buyer)))
}
