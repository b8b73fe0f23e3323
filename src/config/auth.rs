//! Who is who: how buyers are identified (`AUTH`, `JWT_*`) and the admin token.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::value::{non_empty, number};
use crate::auth::{Auth, Expect, Verifier};

#[derive(Debug, Args)]
pub(super) struct AuthArgs {
    /// How buyers are identified: none (user_id from the request) or jwt (the sub of
    /// a verified JWT).
    #[arg(long, env = "AUTH", default_value = "none")]
    auth: String,
    /// AUTH=jwt: the HS256 secret (32+ characters).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// AUTH=jwt: a PEM public key file (RSA for RS256, EC P-256 for ES256), instead of JWT_SECRET.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    jwt_public_key_file: Option<PathBuf>,
    /// AUTH=jwt: the issuer (iss) tokens must name, if set.
    #[arg(long, env = "JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// AUTH=jwt: the audience (aud) tokens must name, if set.
    #[arg(long, env = "JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// AUTH=jwt: seconds of clock difference allowed when checking exp and nbf.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value = "5")]
    jwt_leeway_secs: String,
    /// Bearer token for /admin routes. Unset: admin routes answer loopback clients only.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The secret (32+ characters) that signs waiting-room admissions and queue ids,
    /// the same on every instance. Unset: one is generated once and kept in the database.
    #[arg(long, env = "ADMISSION_SECRET", hide_env_values = true)]
    admission_secret: Option<String>,
}

impl AuthArgs {
    /// How buyers are identified, checked together with the JWT settings.
    pub(super) fn buyers(&self) -> Result<Auth, String> {
        let (issuer, audience) = (
            non_empty(self.jwt_issuer.as_deref()),
            non_empty(self.jwt_audience.as_deref()),
        );
        let expect = Expect {
            issuer: issuer.as_deref(),
            audience: audience.as_deref(),
            leeway: number("JWT_LEEWAY_SECS", &self.jwt_leeway_secs, 0, 300)?,
        };
        match self.auth.to_ascii_lowercase().as_str() {
            "none" => Ok(Auth::None),
            "jwt" => {
                let secret = non_empty(self.jwt_secret.as_deref());
                let verifier = match (secret, &self.jwt_public_key_file) {
                    (Some(secret), None) if secret.len() >= 32 => {
                        Verifier::hs256(secret.as_bytes(), &expect)
                    }
                    (Some(_), None) => {
                        return Err("invalid JWT_SECRET: use at least 32 characters".into());
                    }
                    (None, Some(file)) => Verifier::public_key(file, &expect)?,
                    _ => {
                        return Err(
                            "AUTH=jwt needs exactly one of JWT_SECRET and JWT_PUBLIC_KEY_FILE"
                                .into(),
                        );
                    }
                };
                Ok(Auth::Jwt(Arc::new(verifier)))
            }
            other => Err(format!("invalid AUTH '{other}': expected none or jwt")),
        }
    }

    pub(super) fn admission_secret(&self) -> Result<Option<String>, String> {
        let secret = non_empty(self.admission_secret.as_deref());
        if secret
            .as_ref()
            .is_some_and(|s| s.len() < crate::onsale::token::MIN_SECRET)
        {
            return Err("invalid ADMISSION_SECRET: use at least 32 characters".into());
        }
        Ok(secret)
    }

    pub(super) fn admin_token(&self) -> Result<Option<String>, String> {
        let token = non_empty(self.admin_token.as_deref());
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("invalid ADMIN_TOKEN: use at least 16 characters".into());
        }
        Ok(token)
    }
}
