//! The waiting room over REST, for clients without a socket: join, ask where you
//! stand (and get your admission), and the admin's pause and resume.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::client::{ClientIp, limit_key};
use super::extract::{Admin, Caller, Id, ShowId};
use super::openapi::Errors;
use crate::auth::Buyer;
use crate::error::{Error, Result};
use crate::onsale::PlaceState;
use crate::waiting::Place;

const QUEUE_ID: &str = "x-queue-id";
const ADMISSION_TOKEN: &str = "x-admission-token";

/// Where a buyer stands, and what they need to come back or to book.
#[derive(Serialize, ToSchema)]
pub struct QueueAnswer {
    pub queue: Place,
    /// `AUTH=none`: who the queue knows this buyer as; send it back as `X-Queue-Id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
    /// Once admitted: send it as `X-Admission-Token` when booking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct QueuePaused {
    #[schema(example = "Queue paused")]
    pub message: &'static str,
    pub paused: bool,
}

/// Joins the show's waiting room (once: joining again gives the same place).
#[utoipa::path(post, path = "/shows/{id}/queue", tag = "queue",
    params(ShowId,
        ("Authorization" = Option<String>, Header, description = "Bearer <JWT> (AUTH=jwt: required)"),
        ("X-Queue-Id" = Option<String>, Header, description = "AUTH=none: the queue id given before, to come back to the same place")),
    responses((status = 200, body = QueueAnswer), Errors))]
pub async fn join(
    State(state): State<AppState>,
    Id(show_id): Id,
    Caller(buyer): Caller,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Result<Json<QueueAnswer>> {
    state.bookings.ensure_show(show_id).await?;
    let (who, queue_id) = match who_or_new(&state, &headers, buyer.as_ref())? {
        Who::Known(who) => (who, None),
        Who::New { buyer, queue_id } => (buyer, Some(queue_id)),
    };
    // Without sign-in, a new place counts against the client's address.
    let address = buyer.is_none().then(|| limit_key(client));
    let place = state.queues.join(show_id, &who, address).await?;
    answer(&state, show_id, &who, place, queue_id)
}

/// Where the buyer stands in the show's waiting room; once admitted, with the
/// admission token.
#[utoipa::path(get, path = "/shows/{id}/queue/me", tag = "queue",
    params(ShowId,
        ("Authorization" = Option<String>, Header, description = "Bearer <JWT> (AUTH=jwt: required)"),
        ("X-Queue-Id" = Option<String>, Header, description = "AUTH=none: required, the queue id given on joining")),
    responses((status = 200, body = QueueAnswer), Errors))]
pub async fn me(
    State(state): State<AppState>,
    Id(show_id): Id,
    Caller(buyer): Caller,
    headers: HeaderMap,
) -> Result<Json<QueueAnswer>> {
    state.bookings.ensure_show(show_id).await?;
    let who = match who_or_new(&state, &headers, buyer.as_ref())? {
        Who::Known(who) => who,
        Who::New { .. } => {
            return Err(Error::Unauthorized(
                "send the X-Queue-Id header you were given when joining".into(),
            ));
        }
    };
    let place = state
        .queues
        .place(show_id, &who)
        .await?
        .ok_or(Error::NotInQueue)?;
    answer(&state, show_id, &who, place, None)
}

/// Stops admissions (the queue keeps its order; joining goes on). Every
/// instance's doorman obeys within a tick (a quarter of a second).
#[utoipa::path(post, path = "/admin/shows/{id}/queue/pause", tag = "admin",
    params(ShowId, ("Authorization" = Option<String>, Header, description = "Bearer <ADMIN_TOKEN>")),
    responses((status = 200, body = QueuePaused), Errors))]
pub async fn pause(
    _: Admin,
    State(state): State<AppState>,
    Id(show_id): Id,
) -> Result<Json<QueuePaused>> {
    set_paused(&state, show_id, true).await
}

/// Lets admissions go on, at the queue's rate.
#[utoipa::path(post, path = "/admin/shows/{id}/queue/resume", tag = "admin",
    params(ShowId, ("Authorization" = Option<String>, Header, description = "Bearer <ADMIN_TOKEN>")),
    responses((status = 200, body = QueuePaused), Errors))]
pub async fn resume(
    _: Admin,
    State(state): State<AppState>,
    Id(show_id): Id,
) -> Result<Json<QueuePaused>> {
    set_paused(&state, show_id, false).await
}

async fn set_paused(state: &AppState, show_id: i64, paused: bool) -> Result<Json<QueuePaused>> {
    state.queues.set_paused(show_id, paused).await?;
    let message = if paused {
        "Queue paused"
    } else {
        "Queue resumed"
    };
    tracing::info!(show_id, paused, "{message}");
    Ok(Json(QueuePaused { message, paused }))
}

enum Who {
    Known(String),
    /// `AUTH=none` without a queue id: a new one.
    New {
        buyer: String,
        queue_id: String,
    },
}

/// The waiting-room buyer a request speaks for: the signed-in buyer (`AUTH=jwt`),
/// or the queue id it sends (`AUTH=none`), or none yet.
fn who_or_new(state: &AppState, headers: &HeaderMap, buyer: Option<&Buyer>) -> Result<Who> {
    if state.config.auth.is_jwt() {
        let buyer = buyer.ok_or_else(|| {
            Error::Unauthorized(
                "the waiting room needs a signed-in buyer: send Authorization: Bearer <JWT>".into(),
            )
        })?;
        return Ok(Who::Known(buyer.id.clone()));
    }
    match header(headers, QUEUE_ID)? {
        Some(id) => Ok(Who::Known(state.queues.keys().check_queue_id(id)?)),
        None => {
            let (queue_id, buyer) = state.queues.keys().new_queue_id()?;
            Ok(Who::New { buyer, queue_id })
        }
    }
}

fn answer(
    state: &AppState,
    show_id: i64,
    who: &str,
    place: Place,
    queue_id: Option<String>,
) -> Result<Json<QueueAnswer>> {
    let admission_token = match (place.state, place.admitted_until) {
        (PlaceState::Admitted, Some(until)) => {
            Some(state.queues.keys().admission(show_id, who, until)?)
        }
        _ => None,
    };
    Ok(Json(QueueAnswer {
        queue: place,
        queue_id,
        admission_token,
    }))
}

/// The admission a booking request carries (`X-Admission-Token`), checked for
/// this show and this buyer: the JWT's under `AUTH=jwt`, the `X-Queue-Id`'s under
/// `AUTH=none` (required with it). Whether it is still live, the booking
/// transaction decides.
pub fn admission(
    state: &AppState,
    show_id: i64,
    headers: &HeaderMap,
    buyer: Option<&Buyer>,
) -> Result<Option<String>> {
    let Some(token) = header(headers, ADMISSION_TOKEN)? else {
        return Ok(None);
    };
    let keys = state.queues.keys();
    let expected = match buyer {
        Some(buyer) => buyer.id.clone(),
        None => {
            let id = header(headers, QUEUE_ID)?.ok_or_else(|| {
                Error::AdmissionInvalid(
                    "an admission is its buyer's: send the X-Queue-Id it was given to".into(),
                )
            })?;
            keys.check_queue_id(id)?
        }
    };
    Ok(Some(
        keys.check_admission(token, show_id, Some(&expected))?.buyer,
    ))
}

/// A header's value, if sent once and readable.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| Error::Validation(format!("{name} must be visible ASCII"))),
        (Some(_), Some(_)) => Err(Error::Validation(format!("send {name} once"))),
    }
}
