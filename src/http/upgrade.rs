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
use crate::ws::waiting::Joining;
use crate::ws::{MAX_MESSAGE_BYTES, READ_BUFFER_BYTES};

/// Upgrades to a WebSocket session: the live seat map of a show (docs/PROTOCOL.md).
#[utoipa::path(get, path = "/shows/{id}/ws", tag = "clients",
    params(("id" = i64, Path, description = "The show's id", minimum = 1),
        ("access_token" = Option<String>, Query, description = "AUTH=jwt: the buyer's JWT"),
        ("snapshot" = Option<String>, Query, description = "`full` (the default): `snapshot` frames with every seat's place; `state`: compact `state` frames, for clients that have GET /shows/{id}/layout"),
        ("runs" = Option<bool>, Query, description = "With snapshot=state: true sends each part's statuses and versions in runs (`status_runs`, `version_runs`), a few bytes for a hall whose seats are alike"),
        ("have" = Option<String>, Query, description = "With snapshot=state: the digest of the map the client already has (each 100-seat block's version sum, comma-separated); the first state then carries only the blocks that differ"),
        ("queue_id" = Option<String>, Query, description = "AUTH=none, a show with a waiting room: the queue id this client was given, to come back to its place"),
        ("watch" = Option<bool>, Query, description = "true: a display that only watches (a kiosk); it takes no place in the show's waiting room")),
    responses((status = 101, description = "Switching protocols"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::http::responses::ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: a bad access_token", body = crate::http::responses::ErrorBody),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`, `FORBIDDEN`, or `ADMISSION_INVALID` (a queue_id this server did not issue)", body = crate::http::responses::ErrorBody),
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
    let runs = flag(&query, "runs")?;
    let view = match query.get("snapshot").map(String::as_str) {
        None | Some("full") if runs => {
            return Err(Error::Validation(
                "runs encodes a state view: send it with snapshot=state".into(),
            ));
        }
        None | Some("full") => View::Full,
        Some("state") if runs => View::StateRuns,
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
        Some(_) if view == View::Full => {
            return Err(Error::Validation(
                "have resumes a state view: send it with snapshot=state".into(),
            ));
        }
        Some(digest) => Some(resume::parse_digest(digest).map_err(Error::Validation)?),
    };
    state.bookings.ensure_show(show_id).await?;
    // A display (a kiosk) watches without taking a place in the waiting room.
    let watching = flag(&query, "watch")?;
    let waiting = match state.queues.of(show_id).await? {
        Some(_) if !watching => Some(joining(
            &state,
            buyer.as_ref(),
            query.get("queue_id"),
            super::client::limit_key(client),
        )?),
        _ => None,
    };
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
        waiting,
        keys: state.queues.keys().clone(),
    };
    Ok(ws
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each frame straight through: there is no later flush to wait for.
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session.run(socket)))
}

/// Who the show's waiting room knows this session's buyer as: the signed-in
/// buyer (`AUTH=jwt`; none yet: the session joins when one signs in), or the
/// queue id the client sent back, or a new one.
fn joining(
    state: &AppState,
    buyer: Option<&crate::auth::Buyer>,
    queue_id: Option<&String>,
    address: std::net::IpAddr,
) -> Result<Joining> {
    let queues = state.queues.clone();
    if state.config.auth.is_jwt() {
        let buyer = buyer.map(|b| b.id.clone());
        return Ok(Joining {
            queues,
            buyer,
            new_queue_id: None,
            address: None,
        });
    }
    let (buyer, new_queue_id) = match queue_id {
        Some(id) => (queues.keys().check_queue_id(id)?, None),
        None => {
            let (id, buyer) = queues.keys().new_queue_id()?;
            (buyer, Some(id))
        }
    };
    Ok(Joining {
        queues,
        buyer: Some(buyer),
        new_queue_id,
        address: Some(address),
    })
}

/// A `true`/`false` query parameter; absent is `false`.
fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool> {
    match query.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::Validation(format!(
            "{name} must be true or false, not '{}'",
            other.escape_debug()
        ))),
    }
}
