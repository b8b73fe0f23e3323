//! The OpenAPI 3.1 document of the REST surface, generated from the code: every
//! route is registered through `utoipa_axum::routes!`, so a route cannot exist
//! without its entry, and request and response types are the handlers' own
//! (`ToSchema`): bodies in `responses`, requests and headers where they are read.
//!
//! `GET /openapi.json` serves it; `GET /docs` is a page that renders it, built into
//! the binary (nothing is fetched from elsewhere).

use axum::Extension;
use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::{IntoResponses, OpenApi};

use super::responses::ErrorBody;
use crate::config::Config;

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
        (name = "queue", description = "A show's waiting room: joining, where a buyer stands, admissions"),
        (name = "admin", description = "Needs ADMIN_TOKEN (or the local operator)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "clients", description = "The web clients and the WebSocket upgrade"),
    )
)]
pub struct ApiDoc;

/// The document of one router, as `GET /openapi.json` serves it.
#[derive(Clone)]
pub struct Published(Bytes);

/// The document of a router built with `config`, ready to serve.
pub fn publish(doc: &Document, config: &Config) -> Published {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    refine(&mut doc, config);
    Published(doc.to_string().into())
}

/// What the derives cannot say: the limits this server was started with, and
/// the rules that tie one field of a request to another.
fn refine(doc: &mut Value, config: &Config) {
    let schemas = &mut doc["components"]["schemas"];
    let book = &mut schemas["BookRequestBody"];
    book["properties"]["seat_nos"]["maxItems"] = json!(config.booking.max_seats_per_booking);
    // Seats are named one way: listed, or asked for as the best N.
    book["oneOf"] = json!([
        one_of("seat_nos", "array", &["best_available"]),
        one_of("best_available", "object", &["seat_nos"]),
    ]);
    if !config.auth.is_jwt() {
        // Buyers name themselves; with AUTH=jwt the token names them.
        match book["required"].as_array_mut() {
            Some(required) => required.push(json!("user_id")),
            None => book["required"] = json!(["user_id"]),
        }
        book["properties"]["user_id"]["type"] = json!(["string", "integer"]);
    }
    schemas["BestAvailableBody"]["properties"]["count"]["maximum"] =
        json!(config.booking.max_seats_per_booking);
    let show = &mut schemas["NewShowRequest"];
    show["properties"]["total_seats"]["maximum"] = json!(config.booking.max_seats_per_show);
    // A hall is `total_seats` (with `price` and `currency`) or a `layout`.
    show["oneOf"] = json!([
        one_of("total_seats", "integer", &["layout"]),
        one_of("layout", "object", &["total_seats", "price", "currency"]),
    ]);
    // An optional body is left out, never sent as `null` (which is no object).
    let bodies = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
        .filter_map(|operation| operation.pointer_mut("/requestBody/content"))
        .filter_map(Value::as_object_mut)
        .flat_map(|content| content.values_mut())
        .filter_map(|media| media.get_mut("schema"));
    for schema in bodies {
        if let Some([body, null]) = schema["oneOf"].as_array().map(Vec::as_slice)
            && null == &json!({"type": "null"})
        {
            *schema = body.clone();
        }
    }
}

/// A branch of a `oneOf`: `field` is given, as a `kind`, and `others` are left
/// out (or `null`, which the server reads as left out).
fn one_of(field: &str, kind: &str, others: &[&str]) -> Value {
    let mut properties = Map::new();
    properties.insert(field.into(), json!({"type": kind}));
    for other in others {
        properties.insert((*other).into(), json!({"type": "null"}));
    }
    json!({"required": [field], "properties": properties})
}

/// The OpenAPI document (OpenAPI 3.1, JSON).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document(Extension(Published(body)): Extension<Published>) -> Response {
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
