//! `GET /metrics`: Prometheus's scrape, on the main port or on `METRICS_ADDR`.
//! Open unless `METRICS_TOKEN` is set; the admin token does not guard it, so a
//! scraper needs no admin rights.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::extract::bearer;
use crate::error::{Error, Result};
use crate::monitoring::{self, Scrape, TOP_SHOWS};

/// Prometheus metrics (docs/OPERATIONS.md); on METRICS_ADDR instead when set.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    params(("Authorization" = Option<String>, Header, description = "Bearer <METRICS_TOKEN>, when set")),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "`UNAUTHORIZED`", body = crate::http::responses::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = &state.config.metrics.token
        && bearer(&headers) != Some(token.as_str())
    {
        return Err(Error::Unauthorized(
            "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>".into(),
        ));
    }
    let now = Scrape {
        sessions: state.sessions.count(),
        busiest: state.hub.busiest(TOP_SHOWS),
        pool_size: state.pool.size(),
        pool_idle: state.pool.num_idle(),
        listening: state.hub.is_listening(),
    };
    let text = monitoring::render(&now);
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// The router for a `METRICS_ADDR` listener of its own.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}
