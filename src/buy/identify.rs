//! Who is buying: a buyer's HS256 JWT, or a header set by a trusted gateway. A buyer can never act as someone else: the user id comes only from the
//! verified token (or the gateway), never from the body or the path.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use crate::{
    config::{Settings, UserIdentity},
    domain::{UserId, net::TrustedProxies},
};

/// Seconds of clock skew allowed between the login system and this service, on `exp`, `nbf` and
/// `iat`.
pub(crate) const LEEWAY_SECS: u64 = 5;

/// Header a trusted gateway sets with the authenticated user id.
pub(crate) const TRUSTED_USER_HEADER: &str = "x-user-id";

/// Claims of a buyer's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
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
    /// A token that lives longer than the configured maximum.
    #[error("the token lives longer than this service accepts")]
    TooLong,
    /// A token issued in the future (beyond the clock-skew leeway): its `iat` would stretch
    /// the maximum lifetime.
    #[error("the token is issued in the future")]
    IssuedInFuture,
    /// `X-User-Id` from a peer that is not a trusted proxy.
    #[error("this peer is not a trusted proxy; X-User-Id is not accepted from it")]
    UntrustedPeer,
}

/// Verifies buyers.
pub struct Authenticator {
    identity: UserIdentity,
    key: DecodingKey,
    validation: Validation,
    max_lifetime: u64,
    leeway: u64,
    proxies: TrustedProxies,
}

impl Authenticator {
    /// An authenticator for the configured secrets, token checks, identity mode and proxies.
    pub fn new(settings: &Settings) -> Self {
        let jwt = &settings.jwt;
        let mut validation = Validation::new(Algorithm::HS256);
        // A configured issuer or audience is required, not only checked when present.
        let mut required = vec!["exp", "sub"];
        if !jwt.issuer.is_empty() {
            required.push("iss");
        }
        if !jwt.audience.is_empty() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        if jwt.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&jwt.issuer]);
        }
        if jwt.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&jwt.audience]);
        }
        Self {
            identity: settings.user_identity,
            key: DecodingKey::from_secret(settings.jwt_secret.expose().as_bytes()),
            validation,
            max_lifetime: jwt.max_lifetime_secs,
            leeway: LEEWAY_SECS,
            // Validated at load; an unparseable list trusts nobody.
            proxies: TrustedProxies::parse(&settings.trusted_proxies).unwrap_or_default(),
        }
    }

    /// The configured trusted proxies.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// True in trusted-header mode, where a gateway's `X-User-Id` names the buyer.
    pub(crate) fn reads_user_header(&self) -> bool {
        self.identity == UserIdentity::TrustedHeader
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
        peer: Option<IpAddr>,
    ) -> Result<UserId, AuthError> {
        match self.identity {
            UserIdentity::TrustedHeader => {
                // Anyone can send X-User-Id; only a trusted gateway's counts.
                if !peer.is_some_and(|p| self.proxies.trusts(p)) {
                    return Err(AuthError::UntrustedPeer);
                }
                let raw = trusted_user.ok_or(AuthError::Missing)?;
                UserId::parse(raw).map_err(|_| AuthError::BadSubject)
            }
            UserIdentity::Jwt => {
                let token = bearer(authorization).ok_or(AuthError::Missing)?;
                let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
                    .map_err(|_| AuthError::Invalid)?;
                let now = jsonwebtoken::get_current_timestamp();
                if data.claims.iat.is_some_and(|iat| iat > now + self.leeway) {
                    return Err(AuthError::IssuedInFuture);
                }
                if self.max_lifetime > 0 {
                    let from = data.claims.iat.unwrap_or(now);
                    if data.claims.exp.saturating_sub(from) > self.max_lifetime {
                        return Err(AuthError::TooLong);
                    }
                }
                UserId::parse(&data.claims.sub).map_err(|_| AuthError::BadSubject)
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer(authorization: Option<&str>) -> Option<&str> {
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
            iat: Some(jsonwebtoken::get_current_timestamp()),
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Signs a buyer token that this service's settings accept: its secret, and its issuer and
/// audience when they are configured (`seckill token`).
///
/// # Errors
/// Signing failed.
pub(crate) fn mint_token_for(
    settings: &Settings,
    user_id: &str,
    ttl_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = serde_json::json!({ "sub": user_id, "exp": now + ttl_secs, "iat": now });
    if !settings.jwt.issuer.is_empty() {
        claims["iss"] = settings.jwt.issuer.clone().into();
    }
    if !settings.jwt.audience.is_empty() {
        claims["aud"] = settings.jwt.audience.clone().into();
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(settings.jwt_secret.expose().as_bytes()),
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
    fn a_signed_token_names_the_buyer() {
        let a = auth(UserIdentity::Jwt);
        let t = mint_token(Settings::default().jwt_secret.expose(), "alice", 60).unwrap();
        let user = a
            .buyer(Some(&format!("Bearer {t}")), Some("mallory"), None)
            .unwrap();
        assert_eq!(user.as_ref(), "alice");
    }

    #[test]
    fn forged_expired_and_missing_tokens_are_refused() {
        let a = auth(UserIdentity::Jwt);
        let forged = mint_token("another-secret-of-16+", "alice", 60).unwrap();
        assert_eq!(
            a.buyer(Some(&format!("Bearer {forged}")), None, None),
            Err(AuthError::Invalid)
        );
        let secret = Settings::default().jwt_secret;
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "alice".into(),
                exp: jsonwebtoken::get_current_timestamp() - 3600,
                iat: None,
            },
            &EncodingKey::from_secret(secret.expose().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            a.buyer(Some(&format!("Bearer {expired}")), None, None),
            Err(AuthError::Invalid)
        );
        assert_eq!(a.buyer(None, Some("alice"), None), Err(AuthError::Missing));
    }

    #[test]
    fn trusted_header_mode_reads_the_gateway_header_only_from_a_trusted_proxy() {
        let a = Authenticator::new(&Settings {
            user_identity: UserIdentity::TrustedHeader,
            trusted_proxies: "10.0.0.0/8".into(),
            ..Settings::default()
        });
        let gw = Some("10.1.2.3".parse().unwrap());
        assert_eq!(a.buyer(None, Some("bob"), gw).unwrap().as_ref(), "bob");
        assert_eq!(a.buyer(Some("Bearer x"), None, gw), Err(AuthError::Missing));
        assert_eq!(a.buyer(None, Some(""), gw), Err(AuthError::BadSubject));
        let anyone = Some("203.0.113.5".parse().unwrap());
        assert_eq!(
            a.buyer(None, Some("bob"), anyone),
            Err(AuthError::UntrustedPeer)
        );
        assert_eq!(
            a.buyer(None, Some("bob"), None),
            Err(AuthError::UntrustedPeer)
        );
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(Settings::default().jwt_secret.expose().as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_token_minted_for_the_settings_passes_their_checks() {
        let mut settings = Settings::default();
        settings.jwt.issuer = "login".into();
        settings.jwt.audience = "seckill".into();
        let a = Authenticator::new(&settings);
        let t = mint_token_for(&settings, "alice", 600).unwrap();
        assert_eq!(
            a.buyer(Some(&format!("Bearer {t}")), None, None),
            Ok(UserId::parse("alice").unwrap())
        );
        // The plain minting (no iss, aud) does not pass them.
        let plain = mint_token(settings.jwt_secret.expose(), "alice", 600).unwrap();
        assert!(
            a.buyer(Some(&format!("Bearer {plain}")), None, None)
                .is_err()
        );
    }

    #[test]
    fn issuer_audience_not_before_and_lifetime_are_checked_when_configured() {
        let mut settings = Settings::default();
        settings.jwt.issuer = "login".into();
        settings.jwt.audience = "seckill".into();
        settings.jwt.max_lifetime_secs = 3_600;
        let a = Authenticator::new(&settings);
        let now = jsonwebtoken::get_current_timestamp();
        let good = serde_json::json!({"sub": "al", "exp": now + 600, "iat": now, "iss": "login", "aud": "seckill"});
        let check = |c: &serde_json::Value| {
            a.buyer(Some(&format!("Bearer {}", token(c.clone()))), None, None)
        };
        assert!(check(&good).is_ok());
        let mut other_iss = good.clone();
        other_iss["iss"] = "elsewhere".into();
        assert_eq!(check(&other_iss), Err(AuthError::Invalid));
        let mut no_aud = good.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(&no_aud), Err(AuthError::Invalid));
        let mut early = good.clone();
        early["nbf"] = (now + 600).into();
        assert_eq!(check(&early), Err(AuthError::Invalid), "not before");
        let mut within_leeway = good.clone();
        within_leeway["nbf"] = (now + 2).into();
        assert!(check(&within_leeway).is_ok(), "nbf has the leeway");
        let mut forever = good.clone();
        forever["exp"] = (now + 30 * 86_400).into();
        assert_eq!(check(&forever), Err(AuthError::TooLong));
        forever.as_object_mut().unwrap().remove("iat");
        assert_eq!(
            check(&forever),
            Err(AuthError::TooLong),
            "without iat: from now"
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_so_the_lifetime_holds() {
        let mut settings = Settings::default();
        settings.jwt.max_lifetime_secs = 3_600;
        let a = Authenticator::new(&settings);
        let now = jsonwebtoken::get_current_timestamp();
        let check =
            |c: serde_json::Value| a.buyer(Some(&format!("Bearer {}", token(c))), None, None);
        // Issued a month ahead, expiring an hour after that: within the lifetime by its own
        // word, usable for a month.
        let ahead = now + 30 * 86_400;
        assert_eq!(
            check(serde_json::json!({"sub": "al", "iat": ahead, "exp": ahead + 600})),
            Err(AuthError::IssuedInFuture)
        );
        // Within the clock-skew leeway it passes.
        assert!(check(serde_json::json!({"sub": "al", "iat": now + 3, "exp": now + 600})).is_ok());
    }
}
