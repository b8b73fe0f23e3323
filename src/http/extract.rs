//! Extractors that turn every malformed request into a typed [`Error`]: ids in
//! the path, JSON bodies, booking tokens and the admin guard.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::{AppState, origin};
use crate::auth::Buyer;
use crate::booking::IdempotencyKey;
use crate::error::Error;

/// A positive integer id from the path (`/shows/{id}`, `/bookings/{id}`).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::Validation(e.body_text()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Id(id)),
            _ => Err(Error::Validation(format!(
                "'{raw}' is not an id; ids are positive integers"
            ))),
        }
    }
}

/// `{id}` in a show's routes, as the OpenAPI document states it: what [`Id`] accepts.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ShowId {
    /// The show's id.
    #[param(minimum = 1)]
    id: i64,
}

/// `{id}` in a booking's routes, as the OpenAPI document states it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct BookingId {
    /// The booking's id.
    #[param(minimum = 1)]
    id: i64,
}

/// A JSON body. The Content-Type header is not required (curl and websocat users
/// often leave it out); the body must parse as `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let body = body_bytes(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Validation(
                "the request body must be a JSON object".into(),
            ));
        }
        parse_json(&body).map(ApiJson)
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge(format!(
                "the request body is larger than {} bytes",
                super::MAX_BODY_BYTES
            ))
        } else {
            Error::Validation(e.body_text())
        }
    })
}

/// Parses JSON, naming the offending field in the error (`total_seats: invalid type ...`).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match path.as_str() {
            "." | "" => Error::Validation(format!("invalid JSON body: {inner}")),
            _ => Error::Validation(format!("invalid JSON body: {path}: {inner}")),
        }
    })?;
    // One JSON document and nothing after it (whitespace aside).
    de.end().map_err(|e| {
        Error::Validation(format!("invalid JSON body: data after the JSON value: {e}"))
    })?;
    Ok(value)
}

/// The token of a booking, in the body (instead of a header).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    pub token: Option<String>,
}

/// The secret that controls a booking, if the caller sent one:
/// `X-Booking-Token: <token>` or `{"token": "..."}` in the body, and, with
/// `AUTH=none`, `Authorization: Bearer <token>` (with `AUTH=jwt` that header carries
/// the buyer's JWT).
pub struct BookingToken(pub Option<String>);

impl FromRequest<AppState> for BookingToken {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let headers = req.headers();
        let from_header = if state.config.auth.is_jwt() {
            header_token(headers)
        } else {
            booking_token_header(headers)
        }
        .map(str::to_owned);
        let body = body_bytes(req, state).await?;
        let from_body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            parse_json::<TokenBody>(&body)?.token
        };
        Ok(BookingToken(
            from_header.or(from_body).filter(|t| !t.is_empty()),
        ))
    }
}

/// The headers [`BookingToken`] and [`Caller`] read, as the OpenAPI document states them.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CredentialHeaders {
    /// The booking's token.
    #[param(rename = "X-Booking-Token", value_type = String, required = false)]
    token: Option<String>,
    /// `Bearer <JWT>` (AUTH=jwt), or `Bearer <booking token>`.
    #[param(rename = "Authorization", value_type = String, required = false)]
    authorization: Option<String>,
}

/// The buyer making the request: with `AUTH=jwt`, proven by the bearer JWT (401
/// without one); with `AUTH=none`, nobody in particular.
pub struct Caller(pub Option<Buyer>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        state.config.auth.buyer(bearer(&parts.headers)).map(Caller)
    }
}

/// Proof that the caller may use admin routes: the right `ADMIN_TOKEN`, or, when
/// none is configured, the operator at this machine (see [`origin::local_operator`]).
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match &state.config.admin_token {
            Some(expected) => match bearer(&parts.headers) {
                Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(Admin),
                _ => Err(Error::Unauthorized(
                    "admin routes need Authorization: Bearer <ADMIN_TOKEN>".into(),
                )),
            },
            None => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| *addr);
                origin::local_operator(&parts.headers, peer)
                    .map(|()| Admin)
                    .map_err(|why| {
                        Error::Unauthorized(format!(
                            "ADMIN_TOKEN is not set, so admin routes answer the operator at this machine only: {why}"
                        ))
                    })
            }
        }
    }
}

/// A booking token sent in a header: `X-Booking-Token`, or a bearer token.
pub fn booking_token_header(headers: &HeaderMap) -> Option<&str> {
    header_token(headers).or_else(|| bearer(headers))
}

/// The `X-Booking-Token` header.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-booking-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Idempotency-Key`, as the OpenAPI document states it: what [`idempotency_key`]
/// accepts (surrounding spaces are not part of a header's value).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader {
    /// Makes a retry safe: the same key and request within 24 h get the first answer.
    #[param(rename = "Idempotency-Key", value_type = String, required = false,
        min_length = 1, max_length = 200, pattern = "^[!-~]+$")]
    key: Option<String>,
}

/// The `Idempotency-Key` header, checked, if there is one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, Error> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let raw = value
                .to_str()
                .map_err(|_| Error::Validation("Idempotency-Key must be visible ASCII".into()))?;
            IdempotencyKey::parse(raw).map(Some)
        }
    }
}

/// Whether the request carries the configured `ADMIN_TOKEN` as its bearer token.
pub fn has_admin_token(headers: &HeaderMap, admin_token: Option<&str>) -> bool {
    match (admin_token, bearer(headers)) {
        (Some(expected), Some(given)) => constant_time_eq(given.as_bytes(), expected.as_bytes()),
        _ => false,
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares secrets without revealing, through timing, how much of them matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
