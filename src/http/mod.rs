//! The REST surface: the old service's endpoints and JSON shapes, plus confirm,
//! cancel, the WebSocket upgrade and a few additions. Handlers are thin; the work is in `booking` and `shows`.

mod assets;
mod bookings;
pub mod client;
pub mod descriptors;
pub mod drain;
mod error_bodies;
pub(crate) mod extract;
mod limits;
pub mod openapi;
pub mod origin;
pub mod queue;
pub mod responses;
pub mod scrape;
pub mod serve;
mod shed;
mod shows;
mod state;
mod upgrade;

pub use state::{AppState, MAX_BODY_BYTES, Shared};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Uri;
use axum::{Json, Router};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{self, Error, Failure, REQUEST_ID, Result};

pub fn router(state: AppState) -> Router {
    let cors = origin::cors(&state.config.http.allowed_origins);
    let request_timeout = state.config.http.request_timeout;
    // Every route goes through `routes!`, so it is in the OpenAPI document.
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
        .routes(routes!(shows::create))
        .routes(routes!(shows::update))
        .routes(routes!(queue::join))
        .routes(routes!(queue::me))
        .routes(routes!(queue::pause))
        .routes(routes!(queue::resume));
    let router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(assets::seatmap))
        .routes(routes!(assets::kiosk))
        .routes(routes!(assets::file))
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(openapi::document))
        .routes(routes!(openapi::docs))
        .routes(routes!(upgrade::upgrade));
    let router = match state.config.metrics.addr {
        None => router.routes(routes!(scrape::metrics)),
        Some(_) => router,
    };
    let (router, document) = router.merge(api).split_for_parts();
    let router = router
        .layer(axum::Extension(openapi::publish(&document, &state.config)))
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
        .layer(axum::middleware::from_fn_with_state(
            origin::Writers {
                origins: state.config.http.allowed_origins.clone(),
                hosts: state.config.http.allowed_hosts.clone(),
            },
            origin::refuse_cross_site_writes,
        ));
    let router = match cors {
        Some(cors) => router
            .layer(cors)
            .layer(axum::middleware::from_fn(limits::preflight_no_content)),
        None => router,
    };
    // Every request counts against its address's rate, whatever it asks for:
    // unknown routes, custom methods and preflights cost the server too.
    let router = match state.config.http.requests_per_sec {
        Some(per_sec) => router.layer(axum::middleware::from_fn_with_state(
            crate::throttle::Throttle::new(per_sec),
            limits::throttle,
        )),
        None => router,
    };
    let trusted: Arc<[ipnet::IpNet]> = state.config.http.trusted_proxies.clone().into();
    // Outermost first: a client's request id is kept only if it is short and
    // printable; every request gets an id, the response carries it back, and every
    // log line of the request has it.
    router
        .layer(axum::middleware::from_fn(drain::finish_body))
        .layer(axum::middleware::from_fn(count_requests))
        .layer(axum::middleware::from_fn_with_state(trusted, client::identify))
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
        .layer(axum::middleware::from_fn(error::drop_unfit_request_id))
        .with_state(state)
}

/// The URI for the log. Query values are written only for parameters known to
/// carry nothing secret; any other parameter (an `access_token` however it is
/// spelled or encoded, or a token pasted as a key) is written as its length.
fn redacted(uri: &Uri) -> std::borrow::Cow<'_, str> {
    const SHOWN: [&str; 1] = ["snapshot"];
    let Some(query) = uri.query() else {
        return uri.path().into();
    };
    let pairs: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| {
            if SHOWN.iter().any(|k| key.eq_ignore_ascii_case(k)) && value.len() <= 16 {
                format!("{}={}", key.escape_debug(), value.escape_debug())
            } else {
                format!("({} bytes)", key.len() + value.len() + 1)
            }
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&")).into()
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
        "method" => crate::monitoring::method_label(&method),
        "status" => crate::monitoring::status_label(response.status())
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
    responses((status = 200, body = responses::Readiness), (status = 503, description = "Not ready: which part is down", body = responses::Readiness)))]
async fn ready(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let database = database_answers(&state.pool).await.is_ok();
    let listening = state.hub.is_listening();
    let status = if database && listening {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let up = |ok: bool| if ok { "up" } else { "down" };
    let body = responses::Readiness {
        status: if status.is_success() {
            "ready"
        } else {
            "not ready"
        },
        database: up(database),
        listener: up(listening),
    };
    (status, Json(body)).into_response()
}

/// Liveness plus a database round trip: 503 when PostgreSQL cannot be reached.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = responses::Health), (status = 503, description = "`DATABASE_UNAVAILABLE`", body = responses::ErrorBody)))]
async fn health(State(state): State<AppState>) -> Result<Json<responses::Health>> {
    database_answers(&state.pool).await?;
    Ok(Json(responses::Health {
        status: "ok",
        timestamp: chrono::Utc::now(),
    }))
}

/// A round trip to the database, within 2 s: what both health checks ask.
async fn database_answers(pool: &sqlx::PgPool) -> Result<()> {
    let ping = sqlx::query("SELECT 1").execute(pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Unavailable(e.to_string())),
        Err(_) => Err(Error::Unavailable("no answer within 2 s".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_never_reach_the_log_however_they_are_spelled() {
        for query in [
            "access_token=eyJhbGciOi.secret.sig",
            "access%5Ftoken=eyJhbGciOi.secret.sig",
            "ACCESS_TOKEN=eyJhbGciOi.secret.sig",
            "eyJhbGciOi.secret.sig",
            "snapshot=eyJhbGciOi.secret.sig",
        ] {
            let uri: Uri = format!("/shows/1/ws?snapshot=state&{query}")
                .parse()
                .unwrap();
            let logged = redacted(&uri);
            assert!(!logged.contains("secret"), "{logged}");
            assert!(
                logged.starts_with("/shows/1/ws?snapshot=state&("),
                "{logged}"
            );
        }
        let plain: Uri = "/shows/1".parse().unwrap();
        assert_eq!(redacted(&plain), "/shows/1");
    }
}
