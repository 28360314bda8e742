//! Who is calling: the operator (admin bearer token) or a buyer (HS256 JWT, or a header set by
//! a trusted gateway). A buyer can never act as someone else: the user id comes only from the
//! verified token (or the gateway), never from the body or the path.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    config::{Secret, Settings, UserIdentity},
    domain::UserId,
};

/// Header a trusted gateway sets with the authenticated user id.
pub const TRUSTED_USER_HEADER: &str = "x-user-id";

/// Claims of a buyer's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Why a caller was not accepted (always a 401; the reason goes to the body's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials.
    #[error("missing credentials: send Authorization: Bearer <token>")]
    Missing,
    /// Credentials that do not verify.
    #[error("invalid or expired token")]
    Invalid,
    /// A verified token whose subject is not a valid user id.
    #[error("the token's subject is not a valid user id")]
    BadSubject,
}

/// Verifies callers.
pub struct Authenticator {
    admin_token: Secret,
    identity: UserIdentity,
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    /// An authenticator for the configured secrets and identity mode.
    pub fn new(settings: &Settings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Self {
            admin_token: settings.admin_token.clone(),
            identity: settings.user_identity,
            key: DecodingKey::from_secret(settings.jwt_secret.expose().as_bytes()),
            validation,
        }
    }

    /// Checks an `Authorization` header value against the admin token in constant time.
    ///
    /// # Errors
    /// Missing or wrong token.
    pub fn check_admin(&self, authorization: Option<&str>) -> Result<(), AuthError> {
        let token = bearer(authorization).ok_or(AuthError::Missing)?;
        let ok: bool = token
            .as_bytes()
            .ct_eq(self.admin_token.expose().as_bytes())
            .into();
        if ok { Ok(()) } else { Err(AuthError::Invalid) }
    }

    /// The buyer behind a request, from its `Authorization` header or, in trusted-header mode,
    /// its `X-User-Id` header.
    ///
    /// # Errors
    /// Missing, invalid or expired credentials, or an unusable subject.
    pub fn buyer(
        &self,
        authorization: Option<&str>,
        trusted_user: Option<&str>,
    ) -> Result<UserId, AuthError> {
        match self.identity {
            UserIdentity::TrustedHeader => {
                let raw = trusted_user.ok_or(AuthError::Missing)?;
                UserId::parse(raw).map_err(|_| AuthError::BadSubject)
            }
            UserIdentity::Jwt => {
                let token = bearer(authorization).ok_or(AuthError::Missing)?;
                let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
                    .map_err(|_| AuthError::Invalid)?;
                UserId::parse(&data.claims.sub).map_err(|_| AuthError::BadSubject)
            }
        }
    }
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(token.trim())
    } else {
        None
    }
}

/// Signs a buyer token (the loadtest and tests act as the login system that issues them).
///
/// # Errors
/// Signing failed (never for HS256 with a non-empty secret).
pub fn mint_token(
    secret: &str,
    user_id: &str,
    ttl_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let exp = jsonwebtoken::get_current_timestamp() + ttl_secs;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &Claims {
            sub: user_id.to_string(),
            exp,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(identity: UserIdentity) -> Authenticator {
        Authenticator::new(&Settings {
            user_identity: identity,
            ..Settings::default()
        })
    }

    #[test]
    fn the_admin_token_must_match_exactly() {
        let a = auth(UserIdentity::Jwt);
        assert!(a.check_admin(Some("Bearer change-me-admin")).is_ok());
        assert_eq!(
            a.check_admin(Some("Bearer change-me-admiN")),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            a.check_admin(Some("change-me-admin")),
            Err(AuthError::Missing)
        );
        assert_eq!(a.check_admin(None), Err(AuthError::Missing));
    }

    #[test]
    fn a_signed_token_names_the_buyer() {
        let a = auth(UserIdentity::Jwt);
        let t = mint_token(Settings::default().jwt_secret.expose(), "alice", 60).unwrap();
        let user = a
            .buyer(Some(&format!("Bearer {t}")), Some("mallory"))
            .unwrap();
        assert_eq!(user.as_ref(), "alice");
    }

    #[test]
    fn forged_expired_and_missing_tokens_are_refused() {
        let a = auth(UserIdentity::Jwt);
        let forged = mint_token("another-secret-of-16+", "alice", 60).unwrap();
        assert_eq!(
            a.buyer(Some(&format!("Bearer {forged}")), None),
            Err(AuthError::Invalid)
        );
        let secret = Settings::default().jwt_secret;
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "alice".into(),
                exp: jsonwebtoken::get_current_timestamp() - 3600,
            },
            &EncodingKey::from_secret(secret.expose().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            a.buyer(Some(&format!("Bearer {expired}")), None),
            Err(AuthError::Invalid)
        );
        assert_eq!(a.buyer(None, Some("alice")), Err(AuthError::Missing));
    }

    #[test]
    fn trusted_header_mode_reads_the_gateway_header_only() {
        let a = auth(UserIdentity::TrustedHeader);
        assert_eq!(a.buyer(None, Some("bob")).unwrap().as_ref(), "bob");
        assert_eq!(a.buyer(Some("Bearer x"), None), Err(AuthError::Missing));
        assert_eq!(a.buyer(None, Some("")), Err(AuthError::BadSubject));
    }
}
