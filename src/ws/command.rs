//! What a session's commands do: parse, rate-limit, then run against the same
//! [`Bookings`] service as REST, so rules, transactions and error codes are shared.

use std::net::IpAddr;

use futures_util::future::BoxFuture;

use super::protocol::{self, Command, ExistingBooking, Reply, RequestId};
use super::rate::RateLimiter;
use crate::auth::{Auth, Buyer};
use crate::booking::{
    BookRequestBody, BookingDetails, Bookings, CreatedBooking, Credential, IdempotencyKey,
    StatusChange,
};
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
    /// The waiting-room buyer whose admission this session holds, while it lasts.
    pub admission: Option<&'a str>,
    /// Who the show's waiting room knows this session's buyer as, if it has one.
    pub queue_buyer: Option<&'a str>,
    /// What checks an `admission_token` sent with a `book`.
    pub keys: &'a crate::onsale::Keys,
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
        return refused(request_id, Error::RateLimited(ctx.commands_per_sec));
    }
    if let Err(e) = ctx.slot.command_allowed() {
        return refused(request_id, e);
    }
    let command = match parsed {
        Ok(command) => command,
        Err(e) => return refused(request_id, e),
    };
    match command {
        Command::Ping => Started::Answered(Reply::Pong { request_id }.to_json()),
        Command::Auth { token } => sign_in(ctx.auth, &token, request_id),
        command => match signed_in(ctx) {
            Ok(buyer) => Started::Running(run(command, request_id, ctx, buyer)),
            Err(e) => refused(request_id, e),
        },
    }
}

fn refused(request_id: RequestId, e: Error) -> Started {
    Started::Answered(answer(request_id, Err(e)))
}

/// The frame that answers a command. A server-side failure is logged here, where
/// the command is known; the frame leaves its cause out.
fn answer(request_id: RequestId, result: Result<Reply>) -> String {
    match result {
        Ok(reply) => reply.to_json(),
        Err(e) => {
            e.log();
            protocol::error_json(request_id, &e)
        }
    }
}

/// An `auth` command: the token's buyer signs the session in.
fn sign_in(auth: &Auth, token: &str, request_id: RequestId) -> Started {
    let Auth::Jwt(verifier) = auth else {
        let e = Error::Validation("buyers are not signed in on this server (AUTH=none)".into());
        return refused(request_id, e);
    };
    match verifier.verify(token) {
        Ok(buyer) => {
            let user_id = buyer.id.clone();
            let reply = Reply::Authenticated {
                request_id,
                user_id,
            };
            Started::SignedIn(buyer, reply.to_json())
        }
        Err(e) => refused(request_id, e),
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
    let task = CommandTask {
        bookings: ctx.bookings.clone(),
        show_id: ctx.show_id,
        client: ctx.slot.address(),
        buyer,
        admission: ctx.admission.map(str::to_string),
        queue_buyer: ctx.queue_buyer.map(str::to_string),
        keys: ctx.keys.clone(),
    };
    Box::pin(async move {
        let result = task.dispatch(command, request_id.clone()).await;
        answer(request_id, result)
    })
}

/// A command running in a task of its own: the service it calls, and for whom
/// and where.
struct CommandTask {
    bookings: Bookings,
    show_id: i64,
    client: IpAddr,
    buyer: Option<Buyer>,
    /// The session's own live admission (its waiting-room buyer).
    admission: Option<String>,
    queue_buyer: Option<String>,
    keys: crate::onsale::Keys,
}

impl CommandTask {
    async fn dispatch(self, command: Command, request_id: RequestId) -> Result<Reply> {
        match command {
            Command::Book {
                booking,
                idempotency_key,
                admission_token,
            } => {
                let booking = self.book(booking, idempotency_key, admission_token).await?;
                Ok(Reply::Booked {
                    request_id,
                    booking,
                })
            }
            Command::Confirm(target) => {
                let booking = self.change(StatusChange::Confirm, target).await?;
                Ok(Reply::Confirmed {
                    request_id,
                    booking,
                })
            }
            Command::Cancel(target) => {
                let booking = self.change(StatusChange::Cancel, target).await?;
                Ok(Reply::Cancelled {
                    request_id,
                    booking,
                })
            }
            Command::Ping | Command::Auth { .. } => Err(Error::Unexpected(anyhow::anyhow!(
                "answered before running"
            ))),
        }
    }

    async fn book(
        self,
        body: BookRequestBody,
        idempotency_key: Option<String>,
        admission_token: Option<String>,
    ) -> Result<CreatedBooking> {
        let key = parse_key(idempotency_key.as_deref(), self.buyer.as_ref())?;
        let mut req = self
            .bookings
            .validate(body, self.buyer.as_ref(), self.client)?;
        req.admission = match admission_token.filter(|t| !t.is_empty()) {
            // Sent: it must be this show's, and this buyer's when the session
            // knows who its buyer is.
            Some(token) => {
                let buyer = self.buyer.as_ref().map(|b| b.id.as_str());
                let expected = buyer.or(self.queue_buyer.as_deref());
                Some(
                    self.keys
                        .check_admission(&token, self.show_id, expected)?
                        .buyer,
                )
            }
            None => self.admission,
        };
        self.bookings.book(self.show_id, req, key).await
    }

    /// A confirm or cancel, let through by the booking's token if sent, else by
    /// the signed-in owner.
    async fn change(self, change: StatusChange, target: ExistingBooking) -> Result<BookingDetails> {
        let key = parse_key(target.idempotency_key.as_deref(), self.buyer.as_ref())?;
        let token = target.token.filter(|t| !t.is_empty());
        let who = Credential::of(token, self.buyer.clone())
            .ok_or_else(|| Error::Unauthorized("this needs the booking's token".into()))?;
        self.bookings
            .change_status(change, target.booking_id, who, key)
            .await
    }
}

fn parse_key(raw: Option<&str>, buyer: Option<&Buyer>) -> Result<Option<IdempotencyKey>> {
    Ok(raw
        .map(IdempotencyKey::parse)
        .transpose()?
        .map(|key| key.for_buyer(buyer)))
}
