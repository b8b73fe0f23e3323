use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::{IntoParams, IntoResponses};

use super::AppState;
use super::extract::{Admin, ApiJson, Id, ShowId};
use super::openapi::Errors;
use super::responses::{SeatList, ShowCreated, ShowDetail, ShowEnvelope, ShowList, ShowUpdated};
use crate::error::{Error, Result};
use crate::pages::{self, Kind, Page};
use crate::shows::{self, NewShow, NewShowRequest, ShowChange, ShowChangeRequest};

/// All shows, by start time.
#[utoipa::path(get, path = "/shows", tag = "shows",
    responses((status = 200, body = ShowList), Errors))]
pub async fn list(State(state): State<AppState>) -> Result<Json<ShowList>> {
    let shows = shows::list(&state.page_pool).await?;
    Ok(Json(ShowList::new(shows)))
}

/// One show with its hall: stage, sections and rows, categories with prices and
/// what is left of each. Built once per version of the show (see `pages`), with
/// an `ETag` and gzip when asked.
#[utoipa::path(get, path = "/shows/{id}", tag = "shows",
    params(ShowId, IfNoneMatch),
    responses((status = 200, body = ShowEnvelope, headers(("ETag" = String))),
        NotModified, Errors))]
pub async fn get(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Response> {
    let build = || async {
        let show = ShowDetail {
            show: shows::get_with_hall(&state.page_pool, id).await?,
            max_seats_per_booking: state.config.booking.max_seats_per_booking,
        };
        pages::to_json(ShowEnvelope { show }).await
    };
    shared_page(&state, id, Kind::Show, &headers, build).await
}

/// The seat map: every seat's status, version and place, in hall order. Built
/// once per version of the show (see `pages`), with an `ETag` and gzip when asked.
#[utoipa::path(get, path = "/shows/{id}/seats", tag = "shows",
    params(ShowId, IfNoneMatch),
    responses((status = 200, body = SeatList, headers(("ETag" = String))),
        NotModified, Errors))]
pub async fn seats(
    State(state): State<AppState>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Response> {
    let build = || async {
        let seats = shows::seats(&state.page_pool, id).await?;
        pages::to_json(SeatList::new(id, seats)).await
    };
    shared_page(&state, id, Kind::Seats, &headers, build).await
}

/// A show's page from the shared pages (built by `build` when it must be), as an
/// answer to these request headers. Only shows that exist get a page (answered
/// from memory after the first ask), so unknown ids leave nothing behind.
async fn shared_page<F, Fut>(
    state: &AppState,
    id: i64,
    kind: Kind,
    headers: &HeaderMap,
    build: F,
) -> Result<Response>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>>>,
{
    state.bookings.ensure_show(id).await?;
    let page = state
        .pages
        .get(id, kind, state.hub.is_listening(), build)
        .await?;
    Ok(answer(page, headers).await)
}

/// Whether `Accept-Encoding` takes gzip (named, or `*`, with a q-value above 0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok());
            (name.eq_ignore_ascii_case("gzip") || name == "*") && q.is_some_and(|q| q > 0.0)
        })
}

/// The header [`answer`] and [`layout`] compare with a page's `ETag`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct IfNoneMatch {
    /// The ETag of a copy the client has.
    #[param(rename = "If-None-Match", value_type = String, required = false)]
    tag: Option<String>,
}

/// The answer when the client's copy is current.
#[derive(IntoResponses)]
#[response(status = 304, description = "The client's copy is current")]
struct NotModified;

/// A built page as an answer: 304 when the client's copy is current, gzip when
/// the client takes it. `no-cache`: a copy may be kept, but asked about each time.
async fn answer(page: Arc<Page>, headers: &HeaderMap) -> Response {
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
    };
    let gzip = accepts_gzip(headers);
    // The gzip coding is another representation, so it has a tag of its own.
    let gzip_tag = format!("{}-gz\"", page.etag.trim_end_matches('"'));
    let etag = if gzip {
        gzip_tag.clone()
    } else {
        page.etag.clone()
    };
    let tags = [
        (ETAG, etag),
        (CACHE_CONTROL, "no-cache".to_string()),
        (VARY, "Accept-Encoding".to_string()),
    ];
    let current = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == page.etag || t == gzip_tag || t == "*")
        });
    if current {
        return (StatusCode::NOT_MODIFIED, tags).into_response();
    }
    let json = [(CONTENT_TYPE, "application/json".to_string())];
    if gzip {
        // Compressing a large map takes a while, once per version: off the async threads.
        let compressed = tokio::task::spawn_blocking(move || page.gzip()).await;
        if let Ok(body) = compressed {
            return (tags, json, [(CONTENT_ENCODING, "gzip".to_string())], body).into_response();
        }
        return Error::Unexpected(anyhow::anyhow!("compressing a page failed")).into_response();
    }
    (tags, json, page.json.clone()).into_response()
}

/// The show's hall as it never changes (places, categories, prices, drawing):
/// fetch it once, cache it by its ETag (immutable), and ask the WebSocket for live
/// state only with `?snapshot=state`.
#[utoipa::path(get, path = "/shows/{id}/layout", tag = "shows",
    params(ShowId, IfNoneMatch),
    responses((status = 200, body = crate::hall::Layout, headers(("ETag" = String), ("Cache-Control" = String))),
        NotModified, Errors))]
pub async fn layout(
    State(state): State<AppState>,
    Id(id): Id,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response> {
    use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
    use axum::response::IntoResponse;
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let tag = crate::hall::layout_tag(&state.page_pool, id).await?;
    let cached = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if cached {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(ETAG, tag), (CACHE_CONTROL, IMMUTABLE.to_string())],
        )
            .into_response());
    }
    let layout = crate::hall::layout_of(&state.page_pool, id).await?;
    Ok((
        [(ETAG, tag), (CACHE_CONTROL, IMMUTABLE.to_string())],
        Json(layout),
    )
        .into_response())
}

/// Creates a show from a hall `layout`, or with seats "1".."N" (`total_seats`).
#[utoipa::path(post, path = "/admin/shows", tag = "admin",
    request_body(content = NewShowRequest, example = json!({"name": "Rock Concert 2025", "start_time": "2025-12-31T20:00:00Z", "total_seats": 100})),
    params(("Authorization" = Option<String>, Header, description = "Bearer <ADMIN_TOKEN>")),
    responses((status = 201, body = ShowCreated), Errors))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewShowRequest>,
) -> Result<(StatusCode, Json<ShowCreated>)> {
    let new = NewShow::parse(body, state.config.booking.max_seats_per_show)?;
    let show = shows::create(&state.pool, new).await?;
    tracing::info!(show_id = show.id, seats = show.total_seats, "show created");
    Ok((StatusCode::CREATED, Json(ShowCreated::new(show))))
}

/// Changes a show's name, start time or sale window. Every session of the show
/// hears of a window change (`sales_changed`), on every instance.
#[utoipa::path(patch, path = "/admin/shows/{id}", tag = "admin",
    params(ShowId, ("Authorization" = Option<String>, Header, description = "Bearer <ADMIN_TOKEN>")),
    request_body(content = ShowChangeRequest, example = json!({"sales_open_at": "2025-12-01T10:00:00Z", "sales_close_at": null})),
    responses((status = 200, body = ShowUpdated), Errors))]
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Id(id): Id,
    ApiJson(body): ApiJson<ShowChangeRequest>,
) -> Result<Json<ShowUpdated>> {
    let change = ShowChange::parse(body)?;
    let show = shows::update(&state.pool, id, change).await?;
    // This instance's pages are stale now; the others' when the news reaches them.
    state.hub.show_changed(id);
    tracing::info!(show_id = id, "show changed");
    Ok(Json(ShowUpdated::new(show)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused_by_its_q_value() {
        let asks = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::header::ACCEPT_ENCODING,
                axum::http::HeaderValue::from_static(value),
            );
            accepts_gzip(&headers)
        };
        for yes in ["gzip", "br, GZIP", "gzip;q=0.5", "*", "deflate, gzip ; Q=1"] {
            assert!(asks(yes), "{yes}");
        }
        for no in [
            "br",
            "gzip;q=0",
            "gzip;Q=0.",
            "gzip; q=0.000",
            "gzip;q=x",
            "identity",
        ] {
            assert!(!asks(no), "{no}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
