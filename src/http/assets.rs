//! The web clients in `clients/`, compiled into the binary so that a single file
//! serves them: the seat map at `/`, the kiosk at `/kiosk`, their files under `/assets/`.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use crate::error::Error;

const SEATMAP: &str = include_str!("../../clients/seatmap/index.html");
const KIOSK: &str = include_str!("../../clients/kiosk/index.html");

const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript",
        include_str!("../../clients/seatmap/app.js"),
    ),
    (
        "style.css",
        "text/css",
        include_str!("../../clients/seatmap/style.css"),
    ),
    (
        "show.js",
        "text/javascript",
        include_str!("../../clients/seatmap/show.js"),
    ),
    (
        "mine.js",
        "text/javascript",
        include_str!("../../clients/seatmap/mine.js"),
    ),
    (
        "util.js",
        "text/javascript",
        include_str!("../../clients/seatmap/util.js"),
    ),
    (
        "hallmap.js",
        "text/javascript",
        include_str!("../../clients/shared/hallmap.js"),
    ),
    (
        "live.js",
        "text/javascript",
        include_str!("../../clients/shared/live.js"),
    ),
    (
        "kiosk.js",
        "text/javascript",
        include_str!("../../clients/kiosk/kiosk.js"),
    ),
    (
        "kiosk.css",
        "text/css",
        include_str!("../../clients/kiosk/kiosk.css"),
    ),
    // Declared by every page, so that browsers do not ask for /favicon.ico
    // (a 404, and a console error, on every page load).
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../clients/shared/icon.svg"),
    ),
];

/// The seat-map web app.
#[utoipa::path(get, path = "/", tag = "clients",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
pub async fn seatmap() -> Html<&'static str> {
    Html(SEATMAP)
}

/// The kiosk display: `/kiosk?show=1` or `?show=1,2`.
#[utoipa::path(get, path = "/kiosk", tag = "clients",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
pub async fn kiosk() -> Html<&'static str> {
    Html(KIOSK)
}

/// The web clients' scripts and styles.
#[utoipa::path(get, path = "/assets/{file}", tag = "clients",
    params(("file" = String, Path, description = "A file name", example = "app.js")),
    responses((status = 200, description = "JavaScript or CSS", content_type = "text/javascript", body = String),
        (status = 404, description = "`NOT_FOUND`", body = crate::http::responses::ErrorBody)))]
pub async fn file(Path(name): Path<String>) -> Result<Response, Error> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or_else(|| Error::RouteNotFound(format!("/assets/{name}")))?;
    // Short caching: the files change with the binary, and pages reload them cheaply.
    Ok((
        [(CONTENT_TYPE, *content_type), (CACHE_CONTROL, "max-age=60")],
        *body,
    )
        .into_response())
}
