//! The REST surface: the old service's endpoints and JSON shapes, plus confirm,
//! cancel, the WebSocket upgrade and a few additions. Handlers are thin; the work is in `booking` and `shows`.

mod assets;
mod bookings;
pub mod descriptors;
mod error_bodies;
pub(crate) mod extract;
mod limits;
mod live;
pub mod openapi;
pub mod origin;
pub mod scrape;
pub mod serve;
mod shows;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Uri;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::booking::Bookings;
use crate::config::Config;
use crate::error::{self, Error, Failure, REQUEST_ID, Result};
use crate::hub::Hub;
use crate::ws::Sessions;

/// Requests are small JSON documents; anything larger is refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub bookings: Bookings,
    pub config: Arc<Config>,
    pub hub: Hub,
    pub sessions: Sessions,
    /// Becomes `true` when the server begins to shut down.
    pub shutdown: watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    let cors = origin::cors(&state.config.allowed_origins);
    let request_timeout = state.config.http_request_timeout;
    // Every route goes through `routes!`, so it is in the OpenAPI document.
    // The REST API proper: what REST_REQUESTS_PER_SEC limits per client address.
    let api = OpenApiRouter::new()
        .routes(routes!(shows::list))
        .routes(routes!(shows::get))
        .routes(routes!(shows::seats))
        .routes(routes!(shows::layout))
        .routes(routes!(bookings::book))
        .routes(routes!(bookings::get))
        .routes(routes!(bookings::confirm))
        .routes(routes!(bookings::cancel))
        .routes(routes!(bookings::mine))
        .routes(routes!(shows::create));
    let api = match state.config.rest_requests_per_sec {
        Some(per_sec) => api.route_layer(axum::middleware::from_fn_with_state(
            throttle::Throttle::new(per_sec),
            throttle::throttle,
        )),
        None => api,
    };
    let router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(assets::seatmap))
        .routes(routes!(assets::kiosk))
        .routes(routes!(assets::file))
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(openapi::document))
        .routes(routes!(openapi::docs))
        .routes(routes!(live::upgrade));
    let router = match state.config.metrics_addr {
        None => router.routes(routes!(scrape::metrics)),
        Some(_) => router,
    };
    let (router, document) = router.merge(api).split_for_parts();
    openapi::publish(&document);
    let router = router
        .route_layer(axum::middleware::from_fn(tag_route))
        .fallback(|uri: Uri| async move { Error::RouteNotFound(uri.path().to_string()) })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            limits::time_limit,
        ))
        .layer(axum::middleware::from_fn(limits::body_cap))
        .layer(axum::middleware::from_fn(log_failures))
        .layer(axum::middleware::from_fn(count_requests));
    let router = match cors {
        Some(cors) => router
            .layer(cors)
            .layer(axum::middleware::from_fn(limits::preflight_no_content)),
        None => router,
    };
    // Outermost first: every request gets an id (kept if the client sent one), the
    // response carries it back, and every log line of the request has it.
    router
        .layer(axum::middleware::from_fn(error::with_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("");
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), http.route = route, uri = %redacted(req.uri()), request_id = id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The URI for the log, with the value of an `access_token` query parameter (a
/// buyer's JWT on a WebSocket upgrade) replaced: credentials never reach a log line.
fn redacted(uri: &Uri) -> std::borrow::Cow<'_, str> {
    let Some(query) = uri.query().filter(|q| q.contains("access_token")) else {
        return uri.to_string().into();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("access_token", _)) => "access_token=REDACTED".to_string(),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&")).into()
}

/// The route template a request matched, carried on its response to
/// `count_requests` (which runs outside routing, where the template is not known).
#[derive(Clone)]
struct Route(MatchedPath);

/// Runs after routing: names the route in the request's log span and response.
async fn tag_route(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    if let Some(route) = &route {
        tracing::Span::current().record("http.route", route.as_str());
    }
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Counts every response by route template, method and status, including the
/// ones produced outside routing (timeouts, oversized bodies, unknown routes).
async fn count_requests(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_string();
    metrics::counter!(
        crate::monitoring::HTTP_REQUESTS,
        "route" => route,
        "method" => method.to_string(),
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// Writes down the server-side failures that handlers turned into responses
/// (errors carry themselves to here; converting one into a response logs nothing).
async fn log_failures(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let response = next.run(req).await;
    if let Some(Failure(error)) = response.extensions().get::<Failure>() {
        error.log();
    }
    response
}

/// Readiness, for orchestrators and load balancers: 200 only when the database
/// answers and this instance is receiving seat changes (its LISTEN connection is
/// up); 503 naming what is down otherwise.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = openapi::Readiness), (status = 503, description = "Not ready: which part is down", body = openapi::Readiness)))]
async fn ready(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    );
    let listening = state.hub.is_listening();
    let status = if database && listening {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status.is_success() { "ready" } else { "not ready" },
        "database": if database { "up" } else { "down" },
        "listener": if listening { "up" } else { "down" },
    });
    (status, Json(body)).into_response()
}

/// Liveness plus a database round trip: 503 when PostgreSQL cannot be reached.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = openapi::Health), (status = 503, description = "`DATABASE_UNAVAILABLE`", body = openapi::ErrorBody)))]
async fn health(State(state): State<AppState>) -> Result<Json<Value>> {
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(Json(
            json!({"status": "ok", "timestamp": chrono::Utc::now()}),
        )),
        Ok(Err(e)) => Err(Error::Unavailable(e.to_string())),
        Err(_) => Err(Error::Unavailable("no answer within 2 s".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_never_reach_the_log() {
        let uri: Uri = "/shows/1/ws?x=1&access_token=eyJhbGciOi.secret.sig"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "/shows/1/ws?x=1&access_token=REDACTED");
        let plain: Uri = "/shows/1?x=1".parse().unwrap();
        assert_eq!(redacted(&plain), "/shows/1?x=1");
    }
}
