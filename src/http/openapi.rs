//! The OpenAPI 3.1 document of the REST surface, generated from the code: every
//! route is registered through `utoipa_axum::routes!`, so a route cannot exist
//! without its entry, and request and response types are the handlers' own
//! (`ToSchema`): bodies in `responses`, requests and headers where they are read.
//!
//! `GET /openapi.json` serves it; `GET /docs` is a page that renders it, built into
//! the binary (nothing is fetched from elsewhere).

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::OpenApi as Document;
use utoipa::{IntoResponses, OpenApi};

use super::responses::ErrorBody;

/// The errors any API route may answer with, besides its own.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// `VALIDATION_FAILED` (a wrong hall layout adds `path`) or `BAD_REQUEST`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `UNAUTHORIZED`: a missing or wrong token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `FORBIDDEN`.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `SHOW_NOT_FOUND`, `BOOKING_NOT_FOUND` or `NOT_FOUND`.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `METHOD_NOT_ALLOWED`.
    #[response(status = 405)]
    MethodNotAllowed(ErrorBody),
    /// `REQUEST_TIMEOUT`.
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// `SEATS_UNAVAILABLE`, `SEATS_NOT_FOUND`, `NO_ADJACENT_SEATS`, `NOT_ENOUGH_SEATS`,
    /// `USER_LIMIT_REACHED` or `BOOKING_NOT_PENDING`.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `BOOKING_EXPIRED`.
    #[response(status = 410)]
    Gone(ErrorBody),
    /// `PAYLOAD_TOO_LARGE`: a body over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `IDEMPOTENCY_KEY_REUSED`.
    #[response(status = 422)]
    KeyReused(ErrorBody),
    /// `RATE_LIMITED`, with `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// `HEADERS_TOO_LARGE`.
    #[response(status = 431)]
    HeadersTooLarge(ErrorBody),
    /// `INTERNAL`: details are in the server's log, under the `request_id`.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `DATABASE_UNAVAILABLE`, `BUSY` or `OUTCOME_UNKNOWN`: nothing was changed
    /// (except for `OUTCOME_UNKNOWN`, which says it is not known), retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "boxoffice",
        description = "A ticket booking server that never sells one seat twice. REST for shows, bookings and administration; \
                       live seat maps over WebSocket at /shows/{id}/ws (docs/PROTOCOL.md). Errors are JSON with a stable `code`.",
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "shows", description = "Shows, their halls and seats"),
        (name = "bookings", description = "Booking, holding, confirming and cancelling"),
        (name = "admin", description = "Needs ADMIN_TOKEN (or the local operator)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "clients", description = "The web clients and the WebSocket upgrade"),
    )
)]
pub struct ApiDoc;

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Keeps the document the router was built with, for `GET /openapi.json`.
pub fn publish(doc: &Document) {
    let _ = DOCUMENT.get_or_init(|| doc.to_json().unwrap_or_else(|_| "{}".into()));
}

/// The OpenAPI document (OpenAPI 3.1, JSON).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document() -> Response {
    let body = DOCUMENT.get().cloned().unwrap_or_else(|| "{}".into());
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
        .into_response()
}

const DOCS_PAGE: &str = include_str!("../../clients/docs/index.html");

/// A readable page of the OpenAPI document.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}
