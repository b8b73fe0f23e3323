//! What a session's commands do: parse, rate-limit, then run against the same
//! [`Bookings`] service as REST, so rules, transactions and error codes are shared.

use futures_util::future::BoxFuture;

use super::protocol::{self, Command, Reply, RequestId};
use super::rate::RateLimiter;
use crate::auth::{Auth, Buyer};
use crate::booking::{BookRequestBody, BookingDetails, Bookings, Credential, IdempotencyKey};
use crate::error::{Error, Result};

/// What a command needs to know about its session.
pub(super) struct Context<'a> {
    pub bookings: &'a Bookings,
    pub show_id: i64,
    pub commands_per_sec: u32,
    pub auth: &'a Auth,
    /// The signed-in buyer (`AUTH=jwt`), if any.
    pub buyer: Option<&'a Buyer>,
    /// The session's place, which knows the rate its address's sessions share.
    pub slot: &'a super::SessionSlot,
}

/// What became of a command frame.
pub(super) enum Started {
    /// Running: the future is the reply; the session runs it in a task of its own.
    Running(BoxFuture<'static, String>),
    /// Answered at once (bad input, rate limit, ping).
    Answered(String),
    /// An `auth` that proved this buyer; the reply says so.
    SignedIn(Buyer, String),
}

pub(super) fn start(text: &str, limiter: &mut RateLimiter, ctx: &Context<'_>) -> Started {
    let (request_id, parsed) = protocol::parse(text);
    if !limiter.allow() {
        let e = Error::RateLimited(ctx.commands_per_sec);
        return Started::Answered(protocol::error_json(request_id, &e));
    }
    if let Err(e) = ctx.slot.command_allowed() {
        return Started::Answered(protocol::error_json(request_id, &e));
    }
    let command = match parsed {
        Ok(command) => command,
        Err(e) => return Started::Answered(protocol::error_json(request_id, &e)),
    };
    let answer = |result: Result<Reply>| match result {
        Ok(reply) => reply.to_json(),
        Err(e) => {
            e.log();
            protocol::error_json(request_id.clone(), &e)
        }
    };
    match command {
        Command::Ping => Started::Answered(Reply::Pong { request_id }.to_json()),
        Command::Auth { token } => match ctx.auth {
            Auth::None => Started::Answered(answer(Err(Error::Validation(
                "buyers are not signed in on this server (AUTH=none)".into(),
            )))),
            Auth::Jwt(verifier) => match verifier.verify(&token) {
                Ok(buyer) => {
                    let reply = Reply::Authenticated {
                        request_id: request_id.clone(),
                        user_id: buyer.id.clone(),
                    };
                    Started::SignedIn(buyer, reply.to_json())
                }
                Err(e) => Started::Answered(answer(Err(e))),
            },
        },
        command => match signed_in(ctx) {
            Ok(buyer) => Started::Running(run(command, request_id, ctx, buyer)),
            Err(e) => Started::Answered(answer(Err(e))),
        },
    }
}

/// The buyer commands act for: with `AUTH=jwt`, a session must be signed in (with
/// `access_token` on the upgrade, or an `auth` message) by a token still current.
fn signed_in(ctx: &Context<'_>) -> Result<Option<Buyer>> {
    match (ctx.auth.is_jwt(), ctx.buyer) {
        (false, _) => Ok(None),
        (true, Some(buyer)) if buyer.is_current() => Ok(Some(buyer.clone())),
        (true, Some(_)) => Err(Error::Unauthorized(
            "the token has expired: send a new one in an auth message".into(),
        )),
        (true, None) => Err(Error::Unauthorized(
            "this needs a signed-in buyer: send {\"type\": \"auth\", \"token\": \"<JWT>\"} first"
                .into(),
        )),
    }
}

fn run(
    command: Command,
    request_id: RequestId,
    ctx: &Context<'_>,
    buyer: Option<Buyer>,
) -> BoxFuture<'static, String> {
    let bookings = ctx.bookings.clone();
    let show_id = ctx.show_id;
    let client = ctx.slot.address();
    Box::pin(async move {
        let id = request_id.clone();
        let result = async {
            match command {
                Command::Book {
                    seat_nos,
                    best_available,
                    user_id,
                    immediate_confirm,
                    idempotency_key,
                } => {
                    let key = parse_key(idempotency_key.as_deref(), buyer.as_ref())?;
                    let body = BookRequestBody {
                        seat_nos,
                        best_available,
                        user_id,
                        immediate_confirm,
                    };
                    let req = bookings.validate(body, buyer.as_ref(), client)?;
                    let booking = bookings.book(show_id, req, key).await?;
                    Ok(Reply::Booked {
                        request_id: id,
                        booking,
                    })
                }
                Command::Confirm {
                    booking_id,
                    token,
                    idempotency_key,
                } => {
                    let booking = act(
                        &bookings,
                        Act::Confirm,
                        booking_id,
                        token,
                        idempotency_key,
                        buyer,
                    )
                    .await?;
                    Ok(Reply::Confirmed {
                        request_id: id,
                        booking,
                    })
                }
                Command::Cancel {
                    booking_id,
                    token,
                    idempotency_key,
                } => {
                    let booking = act(
                        &bookings,
                        Act::Cancel,
                        booking_id,
                        token,
                        idempotency_key,
                        buyer,
                    )
                    .await?;
                    Ok(Reply::Cancelled {
                        request_id: id,
                        booking,
                    })
                }
                Command::Ping | Command::Auth { .. } => Err(Error::Unexpected(anyhow::anyhow!(
                    "answered before running"
                ))),
            }
        };
        match result.await {
            Ok(reply) => reply.to_json(),
            Err(e) => {
                e.log();
                protocol::error_json(request_id, &e)
            }
        }
    })
}

enum Act {
    Confirm,
    Cancel,
}

/// A confirm or cancel: the booking's token if sent, else the signed-in owner.
async fn act(
    bookings: &Bookings,
    act: Act,
    booking_id: i64,
    token: Option<String>,
    idempotency_key: Option<String>,
    buyer: Option<Buyer>,
) -> Result<BookingDetails> {
    let key = parse_key(idempotency_key.as_deref(), buyer.as_ref())?;
    let who = credential(token, buyer)?;
    match act {
        Act::Confirm => bookings.confirm(booking_id, who, key).await,
        Act::Cancel => bookings.cancel(booking_id, who, key).await,
    }
}

fn credential(token: Option<String>, buyer: Option<Buyer>) -> Result<Credential> {
    match (token.filter(|t| !t.is_empty()), buyer) {
        (Some(token), _) => Ok(Credential::Token(token)),
        (None, Some(buyer)) => Ok(Credential::Owner(buyer.id)),
        (None, None) => Err(Error::Unauthorized("this needs the booking's token".into())),
    }
}

fn parse_key(raw: Option<&str>, buyer: Option<&Buyer>) -> Result<Option<IdempotencyKey>> {
    Ok(raw
        .map(IdempotencyKey::parse)
        .transpose()?
        .map(|key| key.for_buyer(buyer)))
}
