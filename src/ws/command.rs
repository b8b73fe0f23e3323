//! What a session's commands do: parse, rate-limit, then run against the same
//! [`Bookings`] service as REST, so rules, transactions and error codes are shared.

use futures_util::future::BoxFuture;

use super::protocol::{self, Command, Reply, RequestId};
use super::rate::RateLimiter;
use crate::booking::{BookRequestBody, Bookings, IdempotencyKey};
use crate::error::Error;

/// Starts a command, or answers it at once (bad input, rate limit, ping). The
/// future is the command's reply; the session runs it in a task of its own.
pub(super) fn start(
    text: &str,
    limiter: &mut RateLimiter,
    bookings: &Bookings,
    show_id: i64,
    commands_per_sec: u32,
) -> Result<BoxFuture<'static, String>, String> {
    let (request_id, parsed) = protocol::parse(text);
    if !limiter.allow() {
        return Err(protocol::error_json(
            request_id,
            &Error::RateLimited(commands_per_sec),
        ));
    }
    let command = parsed.map_err(|e| protocol::error_json(request_id.clone(), &e))?;
    let bookings = bookings.clone();
    let reply = |id: RequestId, result: Result<Reply, Error>| match result {
        Ok(reply) => reply.to_json(),
        Err(e) => {
            e.log();
            protocol::error_json(id, &e)
        }
    };
    Ok(match command {
        Command::Ping => return Err(Reply::Pong { request_id }.to_json()),
        Command::Book {
            seat_nos,
            user_id,
            immediate_confirm,
            idempotency_key,
        } => Box::pin(async move {
            let body = BookRequestBody {
                seat_nos,
                user_id,
                immediate_confirm,
            };
            let result = async {
                let key = parse_key(idempotency_key.as_deref())?;
                let req = bookings.validate(body)?;
                let booking = bookings.book(show_id, req, key).await?;
                Ok(Reply::Booked {
                    request_id: request_id.clone(),
                    booking,
                })
            };
            reply(request_id.clone(), result.await)
        }),
        Command::Confirm {
            booking_id,
            token,
            idempotency_key,
        } => Box::pin(async move {
            let result = async {
                let key = parse_key(idempotency_key.as_deref())?;
                bookings.confirm(booking_id, token, key).await
            };
            let result = result.await;
            let result = result.map(|booking| Reply::Confirmed {
                request_id: request_id.clone(),
                booking,
            });
            reply(request_id, result)
        }),
        Command::Cancel {
            booking_id,
            token,
            idempotency_key,
        } => Box::pin(async move {
            let result = async {
                let key = parse_key(idempotency_key.as_deref())?;
                bookings.cancel(booking_id, token, key).await
            };
            let result = result.await;
            let result = result.map(|booking| Reply::Cancelled {
                request_id: request_id.clone(),
                booking,
            });
            reply(request_id, result)
        }),
    })
}

fn parse_key(raw: Option<&str>) -> Result<Option<IdempotencyKey>, Error> {
    raw.map(IdempotencyKey::parse).transpose()
}
