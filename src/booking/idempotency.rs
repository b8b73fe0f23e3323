//! Idempotent retries: a client that sends an `Idempotency-Key` with a booking gets
//! the first answer back for every retry of the same request, from any instance and
//! after a restart, and never a second booking.
//!
//! The answer is remembered in `idempotency_keys` in the same transaction as the
//! booking it answers, so an answer exists exactly when its booking committed. A
//! retry looks the key up first; a request that raced with its own duplicate (both
//! sent before either committed) loses on the seats, or on the key's primary key,
//! and then finds the winner's answer the same way.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use serde::de::DeserializeOwned;

use super::request::{BookRequest, SeatChoice};
use crate::error::{Error, Result};

/// How long an answer is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);

/// A checked `Idempotency-Key`, in the scope of whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// '' in `AUTH=none`; the buyer once buyers are authenticated.
    pub scope: String,
    pub key: String,
}

impl IdempotencyKey {
    /// 1 to 200 visible ASCII characters (a UUID is the usual choice).
    pub fn parse(raw: &str) -> Result<IdempotencyKey> {
        let key = raw.trim();
        let visible = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if key.is_empty() || key.len() > 200 || !visible {
            return Err(Error::Validation(
                "Idempotency-Key must be 1 to 200 visible ASCII characters, such as a UUID".into(),
            ));
        }
        Ok(IdempotencyKey {
            scope: String::new(),
            key: key.to_string(),
        })
    }

    /// The key in its sender's scope: with `AUTH=jwt` each buyer's keys are their
    /// own, so one buyer's key can never answer another's request.
    pub fn for_buyer(self, buyer: Option<&crate::auth::Buyer>) -> IdempotencyKey {
        IdempotencyKey {
            scope: buyer.map(|b| b.id.clone()).unwrap_or_default(),
            ..self
        }
    }
}

/// A key with the request it stands for, in the form keys are compared by.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub key: IdempotencyKey,
    pub request: String,
}

impl Keyed {
    pub fn booking(key: IdempotencyKey, show_id: i64, req: &BookRequest) -> Keyed {
        let seats = match &req.seats {
            SeatChoice::Listed(seat_nos) => ("seat_nos", serde_json::json!(seat_nos)),
            SeatChoice::Best(ask) => ("best_available", serde_json::json!(ask)),
        };
        let request = serde_json::json!({
            "book": show_id,
            seats.0: seats.1,
            "user_id": req.user_id,
            "immediate_confirm": req.immediate_confirm,
        })
        .to_string();
        Keyed { key, request }
    }

    /// A confirm or cancel (`action`) of a booking.
    pub fn action(key: IdempotencyKey, action: &str, booking_id: i64) -> Keyed {
        let request = serde_json::json!({ action: booking_id }).to_string();
        Keyed { key, request }
    }
}

/// The answer a key already got, if any. The same key with another request is
/// `IDEMPOTENCY_KEY_REUSED`. Keys older than [`KEEP`] are forgotten.
pub(super) async fn recall<T: DeserializeOwned>(pool: &PgPool, keyed: &Keyed) -> Result<Option<T>> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT request, answer::text FROM idempotency_keys
         WHERE scope = $1 AND key = $2 AND created_at > now() - make_interval(secs => $3)",
    )
    .bind(&keyed.key.scope)
    .bind(&keyed.key.key)
    .bind(KEEP.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((request, _)) if request != keyed.request => Err(Error::IdempotencyKeyReused),
        Some((_, answer)) => serde_json::from_str(&answer).map(Some).map_err(|e| {
            Error::Unexpected(anyhow::anyhow!("a remembered answer is unreadable: {e}"))
        }),
    }
}

/// Remembers answers (with their HTTP status) in the transaction that made them: a
/// batch's keyed winners, or a confirm or cancel. A key used twice at once fails
/// here on its primary key, and its transaction with it; the retry then finds the
/// first answer.
pub(super) async fn remember<T: serde::Serialize>(
    conn: &mut PgConnection,
    status: i16,
    answered: &[(&Keyed, &T)],
) -> sqlx::Result<()> {
    let mut scopes = Vec::with_capacity(answered.len());
    let mut keys = Vec::with_capacity(answered.len());
    let mut requests = Vec::with_capacity(answered.len());
    let mut answers = Vec::with_capacity(answered.len());
    for (keyed, answer) in answered {
        scopes.push(keyed.key.scope.as_str());
        keys.push(keyed.key.key.as_str());
        requests.push(keyed.request.as_str());
        answers.push(serde_json::to_string(answer).map_err(|e| sqlx::Error::Encode(e.into()))?);
    }
    // A key past its day may still have its row (purges run once a minute): it is
    // free to use again, so its old row goes first.
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
           AND created_at <= now() - make_interval(secs => $3)",
    )
    .bind(&scopes)
    .bind(&keys)
    .bind(KEEP.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request, status, answer)
         SELECT s, k, r, $5, a::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(s, k, r, a)",
    )
    .bind(&scopes)
    .bind(&keys)
    .bind(&requests)
    .bind(&answers)
    .bind(status)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets answers older than [`KEEP`], a bounded number at a time.
pub async fn purge(pool: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM idempotency_keys
             WHERE created_at <= now() - make_interval(secs => $1) LIMIT 1000))",
    )
    .bind(KEEP.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_sensible_length() {
        assert!(IdempotencyKey::parse("3f1c8a2e-0b7d-4e59-9a61-2f4d8c0e7b13").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("nul\0").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
    }

    #[test]
    fn the_same_request_keys_the_same_and_another_does_not() {
        let key = IdempotencyKey::parse("k1").unwrap();
        let req = |seats: &[&str]| BookRequest {
            client: None,
            admission: None,
            seats: SeatChoice::Listed(seats.iter().map(|s| s.to_string()).collect()),
            user_id: "u".into(),
            immediate_confirm: true,
        };
        let a = Keyed::booking(key.clone(), 1, &req(&["1", "2"]));
        let b = Keyed::booking(key.clone(), 1, &req(&["1", "2"]));
        let c = Keyed::booking(key.clone(), 1, &req(&["1", "3"]));
        let d = Keyed::booking(key, 2, &req(&["1", "2"]));
        assert_eq!(a.request, b.request);
        assert_ne!(a.request, c.request);
        assert_ne!(a.request, d.request);
    }
}
