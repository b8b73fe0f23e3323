//! `GET /shows/{id}/ws`: the upgrade to a live WebSocket session (see `ws`).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::client::ClientIp;
use super::extract::Id;
use super::origin;
use crate::error::{Error, Result};
use crate::hub::{View, resume};
use crate::ws::session::Session;
use crate::ws::{MAX_MESSAGE_BYTES, READ_BUFFER_BYTES};

/// Upgrades to a WebSocket session: the live seat map of a show (docs/PROTOCOL.md).
#[utoipa::path(get, path = "/shows/{id}/ws", tag = "clients",
    params(("id" = i64, Path, description = "The show's id", minimum = 1),
        ("access_token" = Option<String>, Query, description = "AUTH=jwt: the buyer's JWT"),
        ("snapshot" = Option<String>, Query, description = "`full` (the default): `snapshot` frames with every seat's place; `state`: compact `state` frames, for clients that have GET /shows/{id}/layout"),
        ("have" = Option<String>, Query, description = "With snapshot=state: the digest of the map the client already has (each 100-seat block's version sum, comma-separated); the first state then carries only the blocks that differ")),
    responses((status = 101, description = "Switching protocols"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::http::responses::ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: a bad access_token", body = crate::http::responses::ErrorBody),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED` or `FORBIDDEN`", body = crate::http::responses::ErrorBody),
        (status = 429, description = "`TOO_MANY_SESSIONS`: this address holds MAX_SESSIONS_PER_ADDRESS sessions; or `RATE_LIMITED`", body = crate::http::responses::ErrorBody),
        (status = 404, description = "`SHOW_NOT_FOUND`", body = crate::http::responses::ErrorBody),
        (status = 503, description = "`TOO_MANY_CONNECTIONS` or `DATABASE_UNAVAILABLE`", body = crate::http::responses::ErrorBody)))]
pub async fn upgrade(
    State(state): State<AppState>,
    Id(show_id): Id,
    ClientIp(client): ClientIp,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let config = &state.config;
    origin::origin_allowed(&headers, &config.http.allowed_origins)
        .map_err(Error::OriginNotAllowed)?;
    origin::host_allowed(
        &headers,
        &config.http.allowed_hosts,
        &config.http.allowed_origins,
    )
    .map_err(|host| {
        Error::Forbidden(format!(
            "host '{host}' is not one this server answers to; add it to ALLOWED_HOSTS"
        ))
    })?;
    let Query(query) = query.map_err(|e| Error::Validation(e.body_text()))?;
    // Watching needs no token; a token that is sent must be good (401 otherwise).
    let buyer = match query.get("access_token") {
        Some(token) if state.config.auth.is_jwt() => state.config.auth.buyer(Some(token))?,
        _ => None,
    };
    let view = match query.get("snapshot").map(String::as_str) {
        None | Some("full") => View::Full,
        Some("state") => View::State,
        Some(other) => {
            return Err(Error::Validation(format!(
                "snapshot must be full or state, not '{}'",
                other.escape_debug()
            )));
        }
    };
    let have = match query.get("have") {
        None => None,
        Some(_) if view != View::State => {
            return Err(Error::Validation(
                "have resumes a state view: send it with snapshot=state".into(),
            ));
        }
        Some(digest) => Some(resume::parse_digest(digest).map_err(Error::Validation)?),
    };
    state.bookings.ensure_show(show_id).await?;
    let ws = ws.map_err(|e| {
        Error::Validation(format!(
            "{}: this endpoint needs a WebSocket upgrade",
            e.body_text()
        ))
    })?;
    let slot = state.sessions.try_acquire(client)?;
    let session = Session {
        show_id,
        auth: config.auth.clone(),
        buyer,
        hub: state.hub.clone(),
        bookings: state.bookings.clone(),
        limits: config.ws,
        shutdown: state.shutdown.clone(),
        slot,
        view,
        have,
    };
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each frame straight through: there is no later flush to wait for.
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session.run(socket)))
}
