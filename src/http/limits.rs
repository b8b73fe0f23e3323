//! Limits every request is held to, whatever its route: a rate per client
//! address, a body size cap, a time limit, and the status of CORS preflights.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::MAX_BODY_BYTES;
use super::client::ClientIp;
use crate::error::Error;
use crate::throttle::Throttle;

/// `REST_REQUESTS_PER_SEC`: 429 `RATE_LIMITED` with a `Retry-After` for an address
/// over its rate, on any route and method.
pub async fn throttle(
    State(throttle): State<Arc<Throttle>>,
    ClientIp(client): ClientIp,
    req: Request,
    next: Next,
) -> Response {
    match throttle.check(client) {
        Ok(()) => next.run(req).await,
        Err(retry_after) => Error::Throttled {
            per_sec: throttle.per_sec(),
            retry_after: retry_after.max(1),
        }
        .into_response(),
    }
}

/// Refuses a declared body over the cap on every route, before anything reads
/// it (routes that read bodies also stop at the cap while reading).
pub async fn body_cap(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Error::PayloadTooLarge(format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Answers 408 when a request (reading its body included) takes longer than
/// `HTTP_REQUEST_TIMEOUT_SECS`. Every database wait inside has a shorter deadline
/// of its own, so this only ends requests stalled by their client.
pub async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout(limit.as_secs()).into_response(),
    }
}

/// tower-http answers a CORS preflight 200; it has no content, so say 204.
pub async fn preflight_no_content(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut response = next.run(req).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}
