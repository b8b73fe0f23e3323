//! The WebSocket protocol's messages (docs/PROTOCOL.md describes them for clients).
//! Parsing is total: whatever a client sends becomes a [`Command`] or a typed error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::booking::{BookRequestBody, BookingDetails, CreatedBooking};
use crate::error::Error;

/// What a client may ask for.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Book {
        /// What REST's `POST /shows/:id/book` takes, with the same rules.
        #[serde(flatten)]
        booking: BookRequestBody,
        /// Makes a retry of this booking safe (see `Idempotency-Key` in REST).
        #[serde(default)]
        idempotency_key: Option<String>,
        /// For a show with a waiting room: the admission, if this session was not
        /// admitted itself (a session that was uses its own).
        #[serde(default)]
        admission_token: Option<String>,
    },
    Confirm(ExistingBooking),
    Cancel(ExistingBooking),
    /// Signs the session in (`AUTH=jwt`): the buyer's JWT.
    Auth {
        token: String,
    },
    Ping,
}

/// What a confirm or cancel names: the booking, and what proves the client may
/// change it.
#[derive(Debug, Deserialize)]
pub struct ExistingBooking {
    pub booking_id: i64,
    /// Optional with `AUTH=jwt` for the buyer's own bookings.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A client's `request_id`, echoed in the reply: a string or a number, else absent.
pub type RequestId = Option<Value>;

/// Parses a text frame. The `request_id` is recovered even when the rest is
/// malformed, so that the error reply can name the request it answers.
pub fn parse(text: &str) -> (RequestId, Result<Command, Error>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (None, Err(Error::Validation(format!("invalid JSON: {e}")))),
    };
    let request_id = value
        .get("request_id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned();
    if !value.is_object() {
        return (
            request_id,
            Err(Error::Validation(
                "a message must be a JSON object with a \"type\"".into(),
            )),
        );
    }
    let command = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match path.as_str() {
            "." | "" => Error::Validation(format!("invalid message: {inner}")),
            _ => Error::Validation(format!("invalid message: {path}: {inner}")),
        }
    });
    (request_id, command)
}

/// Replies to commands; each echoes the command's `request_id`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Booked {
        request_id: RequestId,
        booking: CreatedBooking,
    },
    Confirmed {
        request_id: RequestId,
        booking: BookingDetails,
    },
    Cancelled {
        request_id: RequestId,
        booking: BookingDetails,
    },
    Pong {
        request_id: RequestId,
    },
    Authenticated {
        request_id: RequestId,
        user_id: String,
    },
}

impl Reply {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            let e = Error::Unexpected(e.into());
            e.log();
            error_json(None, &e)
        })
    }
}

/// `{"type": "error", "request_id": ..., "code": ..., "error": ..., ...details}`,
/// from the same table as REST error bodies. It logs nothing: the caller does (see
/// [`Error::log`]).
pub fn error_json(request_id: RequestId, error: &Error) -> String {
    let mut frame = Map::new();
    frame.insert("type".into(), Value::from("error"));
    frame.insert("request_id".into(), request_id.unwrap_or(Value::Null));
    frame.extend(error.body());
    Value::Object(frame).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Text;

    fn code(text: &str) -> (RequestId, String) {
        let (id, result) = parse(text);
        (id, result.expect_err("should not parse").code().to_string())
    }

    #[test]
    fn commands_parse_and_keep_their_request_id() {
        let (id, cmd) =
            parse(r#"{"type": "book", "request_id": "r1", "seat_nos": [7, "8"], "user_id": "u"}"#);
        assert_eq!(id, Some(Value::from("r1")));
        assert!(matches!(cmd, Ok(Command::Book { .. })));
        let (id, cmd) = parse(r#"{"type": "ping", "request_id": 4}"#);
        assert_eq!(id, Some(Value::from(4)));
        assert!(matches!(cmd, Ok(Command::Ping)));
    }

    #[test]
    fn book_carries_the_rest_body_and_ignores_unknown_fields_as_rest_does() {
        let (_, cmd) = parse(
            r#"{"type": "book", "seat_nos": [7], "user_id": "u", "immediate_confirm": false,
                "idempotency_key": "k", "colour": "red"}"#,
        );
        let Ok(Command::Book {
            booking,
            idempotency_key,
            ..
        }) = cmd
        else {
            panic!("should parse as book: {cmd:?}");
        };
        assert_eq!(booking.seat_nos, Some(vec![Text("7".into())]));
        assert_eq!(booking.user_id, Some(Text("u".into())));
        assert_eq!(booking.immediate_confirm, Some(false));
        assert_eq!(idempotency_key.as_deref(), Some("k"));
        let (_, cmd) = parse(r#"{"type": "book", "best_available": {"count": 2, "x": 1}}"#);
        assert!(cmd.unwrap_err().to_string().contains("unknown field `x`"));
    }

    #[test]
    fn anything_else_is_a_validation_error_that_still_names_the_request() {
        assert_eq!(code("{not json"), (None, "VALIDATION_FAILED".into()));
        assert_eq!(code("[1, 2]"), (None, "VALIDATION_FAILED".into()));
        let r2 = Some(Value::from("r2"));
        assert_eq!(
            code(r#"{"type": "dance", "request_id": "r2"}"#),
            (r2.clone(), "VALIDATION_FAILED".into())
        );
        assert_eq!(
            code(r#"{"request_id": "r2"}"#),
            (r2.clone(), "VALIDATION_FAILED".into())
        );
        assert_eq!(
            code(r#"{"type": "confirm", "request_id": "r2", "booking_id": "x", "token": "t"}"#),
            (r2, "VALIDATION_FAILED".into())
        );
        let (_, err) = parse(r#"{"type": "cancel", "token": "t"}"#);
        assert!(err.unwrap_err().to_string().contains("booking_id"));
    }
}
