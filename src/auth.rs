//! Who is booking (`AUTH`). With `AUTH=none` buyers name themselves (`user_id` in
//! the request), as with the old service. With `AUTH=jwt` a buyer is the `sub` of a
//! JWT verified here: HS256 with `JWT_SECRET`, or RS256/ES256 with the PEM public key
//! in `JWT_PUBLIC_KEY_FILE`. `exp` and `sub` are required; `iss` and `aud` are
//! required, and must match, when `JWT_ISSUER` / `JWT_AUDIENCE` are set (a token
//! that leaves one out was issued for someone else); `nbf` is honoured when
//! present. Clocks may differ by `JWT_LEEWAY_SECS`, and by nothing more.

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::Error;

/// A buyer proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    /// The token's `sub`: what bookings record as `user_id`.
    pub id: String,
    /// When the token expires (seconds since the epoch).
    pub expires: u64,
}

impl Buyer {
    /// Whether the token behind this buyer is still good now.
    pub fn is_current(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now < self.expires
    }
}

/// Verifies buyers' JWTs.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Optional here so that a missing one is reported by the validation, by name.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<u64>,
}

/// What a token must say besides its signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// Seconds of clock difference allowed for `exp` and `nbf`.
    pub leeway: u64,
}

impl Verifier {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], expect: &Expect<'_>) -> Verifier {
        Verifier::with(DecodingKey::from_secret(secret), Algorithm::HS256, expect)
    }

    /// RS256 or ES256, whichever the PEM public key is for.
    pub fn public_key(file: &Path, expect: &Expect<'_>) -> Result<Verifier, String> {
        let pem = std::fs::read(file)
            .map_err(|e| format!("cannot read JWT_PUBLIC_KEY_FILE {}: {e}", file.display()))?;
        let (key, algorithm) = match DecodingKey::from_rsa_pem(&pem) {
            Ok(key) => (key, Algorithm::RS256),
            Err(_) => match DecodingKey::from_ec_pem(&pem) {
                Ok(key) => (key, Algorithm::ES256),
                Err(e) => {
                    return Err(format!(
                        "JWT_PUBLIC_KEY_FILE {} holds neither an RSA nor an EC public key in PEM: {e}",
                        file.display()
                    ));
                }
            },
        };
        Ok(Verifier::with(key, algorithm, expect))
    }

    fn with(key: DecodingKey, algorithm: Algorithm, expect: &Expect<'_>) -> Verifier {
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = expect.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match expect.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = expect.leeway;
        Verifier { key, validation }
    }

    /// The buyer a token proves, or 401 saying what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<Buyer, Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Error::Unauthorized(why(e.kind())))?;
        let (Some(sub), Some(exp)) = (data.claims.sub, data.claims.exp) else {
            return Err(Error::Unauthorized(
                "the token has no sub or no exp claim".into(),
            ));
        };
        if sub.is_empty() || sub.chars().count() > 100 || sub.contains('\0') {
            return Err(Error::Unauthorized(
                "the token's sub must be 1 to 100 characters".into(),
            ));
        }
        Ok(Buyer {
            id: sub,
            expires: exp,
        })
    }
}

fn why(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAudience => "the token is for another audience (aud)".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer (iss)".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidAlgorithm => {
            "the token is signed with an algorithm this server does not accept".into()
        }
        _ => "the token is not a valid JWT".into(),
    }
}

/// How buyers are identified.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// `AUTH=none`: buyers name themselves.
    #[default]
    None,
    /// `AUTH=jwt`.
    Jwt(std::sync::Arc<Verifier>),
}

impl Auth {
    pub fn is_jwt(&self) -> bool {
        matches!(self, Auth::Jwt(_))
    }

    /// The buyer a bearer token proves. With `AUTH=none` there is none to prove.
    pub fn buyer(&self, token: Option<&str>) -> Result<Option<Buyer>, Error> {
        match (self, token) {
            (Auth::None, _) => Ok(None),
            (Auth::Jwt(verifier), Some(token)) => verifier.verify(token).map(Some),
            (Auth::Jwt(_), None) => Err(Error::Unauthorized(
                "this needs a signed-in buyer: send Authorization: Bearer <JWT>".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    fn mint(claims: serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn in_an_hour() -> u64 {
        now() + 3600
    }

    const TICKETS: Expect<'static> = Expect {
        issuer: Some("tickets"),
        audience: Some("boxoffice"),
        leeway: 5,
    };

    fn reason(result: Result<Buyer, Error>) -> String {
        match result {
            Err(Error::Unauthorized(why)) => why,
            other => panic!("expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn a_good_token_names_its_buyer_and_bad_ones_say_what_is_wrong() {
        let verifier = Verifier::hs256(b"s3cret", &TICKETS);
        let good =
            json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets", "aud": "boxoffice"});
        assert_eq!(
            verifier.verify(&mint(good.clone(), b"s3cret")).unwrap().id,
            "alice"
        );

        assert!(reason(verifier.verify(&mint(good.clone(), b"other"))).contains("signature"));
        let expired = json!({"sub": "alice", "exp": 1000, "iss": "tickets", "aud": "boxoffice"});
        assert!(reason(verifier.verify(&mint(expired, b"s3cret"))).contains("expired"));
        let elsewhere =
            json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets", "aud": "other"});
        assert!(reason(verifier.verify(&mint(elsewhere, b"s3cret"))).contains("audience"));
        let no_exp = json!({"sub": "alice", "iss": "tickets", "aud": "boxoffice"});
        assert!(reason(verifier.verify(&mint(no_exp, b"s3cret"))).contains("exp"));
        assert!(reason(verifier.verify("not.a.jwt")).contains("not a valid JWT"));
    }

    #[test]
    fn a_configured_audience_and_issuer_must_be_named_not_just_not_contradicted() {
        let verifier = Verifier::hs256(b"s3cret", &TICKETS);
        let no_aud = json!({"sub": "alice", "exp": in_an_hour(), "iss": "tickets"});
        assert!(reason(verifier.verify(&mint(no_aud, b"s3cret"))).contains("aud"));
        let no_iss = json!({"sub": "alice", "exp": in_an_hour(), "aud": "boxoffice"});
        assert!(reason(verifier.verify(&mint(no_iss, b"s3cret"))).contains("iss"));
        let open = Verifier::hs256(b"s3cret", &Expect::default());
        let bare = json!({"sub": "alice", "exp": in_an_hour()});
        assert!(
            open.verify(&mint(bare, b"s3cret")).is_ok(),
            "nothing configured, nothing required"
        );
    }

    #[test]
    fn nbf_is_honoured_and_the_leeway_is_the_configured_one() {
        let verifier = Verifier::hs256(
            b"s3cret",
            &Expect {
                leeway: 5,
                ..Expect::default()
            },
        );
        let tomorrow = json!({"sub": "alice", "exp": now() + 2 * 86_400, "nbf": now() + 86_400});
        assert!(reason(verifier.verify(&mint(tomorrow, b"s3cret"))).contains("nbf"));
        let started = json!({"sub": "alice", "exp": in_an_hour(), "nbf": now() - 10});
        assert!(verifier.verify(&mint(started, b"s3cret")).is_ok());
        let a_minute_ago = json!({"sub": "alice", "exp": now() - 60});
        assert!(
            reason(verifier.verify(&mint(a_minute_ago.clone(), b"s3cret"))).contains("expired")
        );
        let lenient = Verifier::hs256(
            b"s3cret",
            &Expect {
                leeway: 120,
                ..Expect::default()
            },
        );
        assert!(lenient.verify(&mint(a_minute_ago, b"s3cret")).is_ok());
        let just_now = json!({"sub": "alice", "exp": now() - 2});
        assert!(
            verifier.verify(&mint(just_now, b"s3cret")).is_ok(),
            "within 5 s"
        );
    }
}
