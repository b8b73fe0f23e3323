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
];

pub async fn seatmap() -> Html<&'static str> {
    Html(SEATMAP)
}

pub async fn kiosk() -> Html<&'static str> {
    Html(KIOSK)
}

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
