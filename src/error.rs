//! The one error type of boxoffice, and the one table that turns it into an HTTP
//! response or a WebSocket error frame: a stable `code`, a status and a message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    /// A field of a larger document (a hall's layout) is wrong; `path` names it,
    /// e.g. `layout.sections[1].rows[3]`.
    #[error("{path}: {message}")]
    InvalidField { path: String, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("show {0} not found")]
    ShowNotFound(i64),
    #[error("booking {0} not found")]
    BookingNotFound(i64),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("seats already taken: {}", .seat_nos.join(", "))]
    SeatsUnavailable { seat_nos: Vec<String> },
    #[error("seats do not exist in this show: {}", .seat_nos.join(", "))]
    SeatsNotFound { seat_nos: Vec<String> },
    #[error("no row has {count} adjacent free seats{}", category_note(.category))]
    NoAdjacentSeats {
        count: usize,
        category: Option<String>,
    },
    #[error("fewer than {count} free seats{}", category_note(.category))]
    NotEnoughSeats {
        count: usize,
        category: Option<String>,
    },
    #[error("this buyer has {has} of at most {max} ({limit}) in this show")]
    UserLimitReached {
        limit: &'static str,
        max: u32,
        has: i64,
    },
    #[error("the sale opens at {}", .opens_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))]
    SaleNotOpen {
        opens_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the sale has closed")]
    SaleClosed,
    #[error("this show has a waiting room: join it, and book with the admission it gives")]
    AdmissionRequired,
    #[error("{0}")]
    AdmissionInvalid(String),
    #[error("the waiting room opens at {}", .opens_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))]
    QueueNotOpen {
        opens_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("this show has no waiting room")]
    NoQueue,
    #[error("this buyer has not joined this show's waiting room")]
    NotInQueue,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("booking {id} is {status}, not PENDING")]
    BookingNotPending { id: i64, status: String },
    #[error("booking {0} has expired")]
    BookingExpired(i64),
    #[error("origin {0} may not call this server")]
    OriginNotAllowed(String),
    #[error("too many commands: at most {0} per second")]
    RateLimited(u32),
    #[error("too many commands from this address's sessions together: at most {0} per second")]
    AddressRateLimited(u32),
    #[error("this address holds {0} sessions, the most one address may; close one first")]
    TooManySessions(usize),
    #[error(
        "too many requests from this address: at most {per_sec} per second; retry in {retry_after} s"
    )]
    Throttled { per_sec: u32, retry_after: u64 },
    #[error("this server holds as many sessions as it may; try again later")]
    TooManyConnections,
    /// The database is unreachable or the pool stayed exhausted for too long. The
    /// cause is for the log; nothing was changed by the failed request.
    #[error("the database is unavailable right now; nothing was changed, try again")]
    Unavailable(String),
    /// The database connection broke while a booking committed, and the outcome
    /// could not be read back before the deadline.
    #[error(
        "the database went away while this booking committed; whether it was made is not known yet"
    )]
    OutcomeUnknown,
    /// Too much work is queued for this show; nothing was changed.
    #[error("the server is too busy right now; nothing was changed, try again")]
    Busy,
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    /// The stable, machine-readable code that clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) | Error::InvalidField { .. } => "VALIDATION_FAILED",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::ShowNotFound(_) => "SHOW_NOT_FOUND",
            Error::BookingNotFound(_) => "BOOKING_NOT_FOUND",
            Error::RouteNotFound(_) => "NOT_FOUND",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::SeatsUnavailable { .. } => "SEATS_UNAVAILABLE",
            Error::SeatsNotFound { .. } => "SEATS_NOT_FOUND",
            Error::NoAdjacentSeats { .. } => "NO_ADJACENT_SEATS",
            Error::NotEnoughSeats { .. } => "NOT_ENOUGH_SEATS",
            Error::BookingNotPending { .. } => "BOOKING_NOT_PENDING",
            Error::UserLimitReached { .. } => "USER_LIMIT_REACHED",
            Error::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Error::SaleNotOpen { .. } => "SALE_NOT_OPEN",
            Error::SaleClosed => "SALE_CLOSED",
            Error::AdmissionRequired => "ADMISSION_REQUIRED",
            Error::AdmissionInvalid(_) => "ADMISSION_INVALID",
            Error::QueueNotOpen { .. } => "QUEUE_NOT_OPEN",
            Error::NoQueue => "NO_QUEUE",
            Error::NotInQueue => "NOT_IN_QUEUE",
            Error::BookingExpired(_) => "BOOKING_EXPIRED",
            Error::OriginNotAllowed(_) => "ORIGIN_NOT_ALLOWED",
            Error::RateLimited(_) | Error::AddressRateLimited(_) | Error::Throttled { .. } => {
                "RATE_LIMITED"
            }
            Error::TooManySessions(_) => "TOO_MANY_SESSIONS",
            Error::TooManyConnections => "TOO_MANY_CONNECTIONS",
            Error::Unavailable(_) => "DATABASE_UNAVAILABLE",
            Error::OutcomeUnknown => "OUTCOME_UNKNOWN",
            Error::Busy => "BUSY",
            Error::Timeout(_) => "REQUEST_TIMEOUT",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Unexpected(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Validation(_) | Error::InvalidField { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::ShowNotFound(_)
            | Error::BookingNotFound(_)
            | Error::RouteNotFound(_)
            | Error::NotInQueue => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::SeatsUnavailable { .. }
            | Error::SeatsNotFound { .. }
            | Error::NoAdjacentSeats { .. }
            | Error::NotEnoughSeats { .. }
            | Error::BookingNotPending { .. }
            | Error::UserLimitReached { .. }
            | Error::SaleNotOpen { .. }
            | Error::SaleClosed
            | Error::QueueNotOpen { .. }
            | Error::NoQueue => StatusCode::CONFLICT,
            Error::AdmissionRequired | Error::AdmissionInvalid(_) => StatusCode::FORBIDDEN,
            Error::BookingExpired(_) => StatusCode::GONE,
            Error::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Error::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Error::RateLimited(_)
            | Error::AddressRateLimited(_)
            | Error::Throttled { .. }
            | Error::TooManySessions(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unavailable(_) | Error::OutcomeUnknown | Error::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: `{"error": message, "code": CODE, ...details}`. Server-side
    /// failures say nothing beyond their code; their cause goes to the log.
    pub fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.to_string()));
        body.insert("code".into(), Value::String(self.code().into()));
        body.extend(self.details());
        body
    }

    /// What the body says besides the message and the code.
    fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        match self {
            Error::SeatsUnavailable { seat_nos } | Error::SeatsNotFound { seat_nos } => {
                details.insert("seat_nos".into(), json!(seat_nos));
            }
            Error::InvalidField { path, .. } => {
                details.insert("path".into(), json!(path));
            }
            Error::NoAdjacentSeats { count, category }
            | Error::NotEnoughSeats { count, category } => {
                details.insert("count".into(), json!(count));
                details.insert("category".into(), json!(category));
            }
            Error::SaleNotOpen { opens_at } | Error::QueueNotOpen { opens_at } => {
                details.insert("opens_at".into(), json!(opens_at));
            }
            Error::BookingNotPending { status, .. } => {
                details.insert("status".into(), json!(status));
            }
            Error::UserLimitReached { limit, max, has } => {
                details.insert("limit".into(), json!(limit));
                details.insert("max".into(), json!(max));
                details.insert("has".into(), json!(has));
            }
            _ => {}
        }
        details
    }

    /// Writes server-side failures to the log; client errors are not worth a line.
    /// Callers log; conversions into responses and frames do not.
    pub fn log(&self) {
        match self {
            Error::Unexpected(e) => tracing::error!(error = ?e, "request failed"),
            Error::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            Error::OutcomeUnknown => tracing::error!("a booking's commit outcome is unknown"),
            _ => {}
        }
    }

    /// A copy for every waiter of a shared failure (a snapshot query several
    /// sessions waited for). Unexpected errors keep their message, not their chain.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Unavailable(cause) => Error::Unavailable(cause.clone()),
            Error::Busy => Error::Busy,
            Error::ShowNotFound(id) => Error::ShowNotFound(*id),
            Error::SaleNotOpen { opens_at } => Error::SaleNotOpen {
                opens_at: *opens_at,
            },
            Error::SaleClosed => Error::SaleClosed,
            Error::AdmissionRequired => Error::AdmissionRequired,
            Error::AdmissionInvalid(m) => Error::AdmissionInvalid(m.clone()),
            Error::QueueNotOpen { opens_at } => Error::QueueNotOpen {
                opens_at: *opens_at,
            },
            Error::NoQueue => Error::NoQueue,
            Error::UserLimitReached { limit, max, has } => Error::UserLimitReached {
                limit,
                max: *max,
                has: *has,
            },
            Error::Validation(m) => Error::Validation(m.clone()),
            Error::NoAdjacentSeats { count, category } => Error::NoAdjacentSeats {
                count: *count,
                category: category.clone(),
            },
            Error::NotEnoughSeats { count, category } => Error::NotEnoughSeats {
                count: *count,
                category: category.clone(),
            },
            other => Error::Unexpected(anyhow::anyhow!("{other:#}")),
        }
    }
}

fn category_note(category: &Option<String>) -> String {
    category
        .as_ref()
        .map(|c| format!(" in category {c}"))
        .unwrap_or_default()
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Error::Unavailable(e.to_string())
        } else {
            Error::Unexpected(e.into())
        }
    }
}

/// Failures that say "the database is not there right now", not "this is a bug":
/// the client may retry them.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // connection exceptions, shutdown/recovery, too many connections, no such database
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "3D000"
        }),
        _ => false,
    }
}

/// A server-side failure riding on its response, for the HTTP layer's logging
/// middleware to write down (see `http::log_failures`).
#[derive(Clone)]
pub struct Failure(pub std::sync::Arc<Error>);

/// The header that carries a request's id (`x-request-id`).
pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// The id of the HTTP request being served, for its error body.
    static CURRENT_REQUEST: String;
}

/// Runs the rest of a request with its id at hand, so that an error answer can
/// name it (`request_id`) and a user's complaint can be matched to the log.
pub async fn with_request_id(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    CURRENT_REQUEST.scope(id, next.run(req)).await
}

/// The longest client-chosen request id that is kept.
const MAX_REQUEST_ID: usize = 128;

/// Removes a client's `x-request-id` unless it is 1 to 128 visible ASCII
/// characters, so that a new one is issued: an id is echoed on the answer and
/// written on every log line, and must not carry 60 KB or control characters there.
pub async fn drop_unfit_request_id(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let fit = |v: &axum::http::HeaderValue| {
        let bytes = v.as_bytes();
        (1..=MAX_REQUEST_ID).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic)
    };
    let headers = req.headers_mut();
    let all: Vec<_> = headers.get_all(REQUEST_ID).iter().collect();
    if all.len() > 1 || all.first().is_some_and(|v| !fit(v)) {
        headers.remove(REQUEST_ID);
    }
    next.run(req).await
}

/// Every error: a message, a stable machine-readable `code`, the request's id, and
/// details that depend on the code (`seat_nos`, `path`, `limit`, ...).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    #[schema(example = "seats already taken: 7")]
    pub error: String,
    #[schema(example = "SEATS_UNAVAILABLE")]
    pub code: &'static str,
    /// Left out only on the answers hyper writes before a request has an id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "3f1c8a2e-0b7d-4e59-9a61-2f4d8c0e7b13")]
    pub request_id: Option<String>,
    /// The code's own details, at the top level beside `error` and `code`.
    #[serde(flatten)]
    #[schema(ignore)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            code: self.code(),
            request_id: CURRENT_REQUEST
                .try_with(String::clone)
                .ok()
                .filter(|id| !id.is_empty()),
            details: self.details(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Error::Throttled { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
        }
        if self.status().is_server_error() {
            response
                .extensions_mut()
                .insert(Failure(std::sync::Arc::new(self)));
        }
        response
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
