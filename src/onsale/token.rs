//! The waiting room's signed tokens: admissions (this buyer may book this show
//! until then) and, under `AUTH=none`, queue ids (who a buyer is, for the queue).
//!
//! Both are HS256 JWTs under one secret that every instance shares
//! (`ADMISSION_SECRET`, or one generated once and kept in the database), so any
//! instance checks what any other issued. A token proves only what it says; the
//! database still decides whether an admission is live (see the booking batch).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shortest shared secret accepted (bytes).
pub const MIN_SECRET: usize = 32;

#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct AdmissionClaims {
    /// What the token is: "admission".
    typ: String,
    show: i64,
    sub: String,
    exp: i64,
}

#[derive(Serialize, Deserialize)]
struct QueueIdClaims {
    /// What the token is: "queue_id".
    typ: String,
    sub: String,
}

/// A checked admission: whose it is and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub buyer: String,
    pub expires_at: DateTime<Utc>,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// An admission token for `buyer` to `show_id`, good until `expires_at`.
    pub fn admission(
        &self,
        show_id: i64,
        buyer: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<String> {
        let claims = AdmissionClaims {
            typ: "admission".into(),
            show: show_id,
            sub: buyer.into(),
            exp: expires_at.timestamp(),
        };
        self.sign(&claims)
    }

    /// Checks an admission token for this show and, when known, this buyer:
    /// `ADMISSION_INVALID` if it is forged, expired, or another's.
    pub fn check_admission(
        &self,
        token: &str,
        show_id: i64,
        buyer: Option<&str>,
    ) -> Result<Admission> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<AdmissionClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::AdmissionInvalid("the admission has expired".into())
                }
                _ => Error::AdmissionInvalid("the admission token does not verify".into()),
            })?
            .claims;
        if claims.typ != "admission" {
            return Err(Error::AdmissionInvalid("not an admission token".into()));
        }
        if claims.show != show_id {
            return Err(Error::AdmissionInvalid(format!(
                "the admission is for show {}, not {show_id}",
                claims.show
            )));
        }
        if buyer.is_some_and(|b| b != claims.sub) {
            return Err(Error::AdmissionInvalid(
                "the admission is another buyer's".into(),
            ));
        }
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or_else(|| {
            Error::AdmissionInvalid("the admission's expiry is not a time".into())
        })?;
        Ok(Admission {
            buyer: claims.sub,
            expires_at,
        })
    }

    /// A new queue id (`AUTH=none`): the signed token, and the buyer it names.
    pub fn new_queue_id(&self) -> Result<(String, String)> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Unexpected(anyhow::anyhow!("no randomness: {e}")))?;
        let buyer: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let buyer = format!("q-{buyer}");
        let token = self.sign(&QueueIdClaims {
            typ: "queue_id".into(),
            sub: buyer.clone(),
        })?;
        Ok((token, buyer))
    }

    /// The buyer a queue id names; `ADMISSION_INVALID` if it was not issued here.
    pub fn check_queue_id(&self, token: &str) -> Result<String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["sub"]);
        let claims = jsonwebtoken::decode::<QueueIdClaims>(token, &self.decoding, &validation)
            .map_err(|_| Error::AdmissionInvalid("the queue id does not verify".into()))?
            .claims;
        if claims.typ != "queue_id" {
            return Err(Error::AdmissionInvalid("not a queue id".into()));
        }
        Ok(claims.sub)
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Unexpected(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"an admission secret of 32+ bytes!!")
    }

    #[test]
    fn an_admission_proves_its_show_buyer_and_time_only() {
        let keys = keys();
        let later = Utc::now() + chrono::Duration::minutes(5);
        let token = keys.admission(7, "alice", later).unwrap();
        let ok = keys.check_admission(&token, 7, Some("alice")).unwrap();
        assert_eq!(ok.buyer, "alice");
        assert_eq!(ok.expires_at.timestamp(), later.timestamp());
        assert!(keys.check_admission(&token, 7, None).is_ok());
        let refused = |r: Result<Admission>| matches!(r, Err(Error::AdmissionInvalid(_)));
        assert!(
            refused(keys.check_admission(&token, 8, Some("alice"))),
            "another show"
        );
        assert!(
            refused(keys.check_admission(&token, 7, Some("bob"))),
            "another buyer"
        );
        let past = keys
            .admission(7, "alice", Utc::now() - chrono::Duration::seconds(1))
            .unwrap();
        assert!(
            refused(keys.check_admission(&past, 7, Some("alice"))),
            "expired"
        );
        let forged = Keys::new(b"another secret, also 32+ bytes long")
            .admission(7, "alice", later)
            .unwrap();
        assert!(
            refused(keys.check_admission(&forged, 7, Some("alice"))),
            "forged"
        );
        assert!(refused(keys.check_admission("junk", 7, None)));
        let (queue_id, _) = keys.new_queue_id().unwrap();
        assert!(
            refused(keys.check_admission(&queue_id, 7, None)),
            "a queue id is no admission"
        );
    }

    #[test]
    fn a_queue_id_names_its_buyer_and_cannot_be_made_up() {
        let keys = keys();
        let (token, buyer) = keys.new_queue_id().unwrap();
        assert_eq!(keys.check_queue_id(&token).unwrap(), buyer);
        let (other, other_buyer) = keys.new_queue_id().unwrap();
        assert_ne!(buyer, other_buyer);
        assert_ne!(token, other);
        let admission = keys
            .admission(1, &buyer, Utc::now() + chrono::Duration::minutes(1))
            .unwrap();
        assert!(
            keys.check_queue_id(&admission).is_err(),
            "an admission is no queue id"
        );
        assert!(
            Keys::new(b"another secret, also 32+ bytes long")
                .check_queue_id(&token)
                .is_err()
        );
    }
}
