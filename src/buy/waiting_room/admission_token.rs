//! The admission token: a JWT (HS256, its own key derived from the service's secret) with
//! `aud` = `sale:<id>`, `sub` = the buyer, `nbf` = when the place was admitted, `exp` = when
//! the admission lapses, `pos` = the place in the queue and `jat` = when the buyer joined. The
//! buy path verifies it in memory.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// Seconds of clock difference between instances tolerated on `nbf` and `exp`.
const LEEWAY_SECS: u64 = 2;
/// Longest token accepted (a 128-byte subject gives about 350 characters).
const MAX_TOKEN_LEN: usize = 1024;

/// The claims of an admission token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    /// `sale:<id>`.
    pub aud: String,
    /// The buyer.
    pub sub: String,
    /// When the place was admitted, Unix seconds.
    pub nbf: u64,
    /// When the admission lapses, Unix seconds.
    pub exp: u64,
    /// The place in the queue (0-based).
    pub pos: u64,
    /// When the buyer joined, Unix seconds.
    pub jat: u64,
}

/// Why a buy's admission was not accepted (all 403, each with its own code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// No `X-Admission-Token` on a queued sale.
    #[error(
        "this sale admits buyers through its queue: join it, and send the admission token as X-Admission-Token"
    )]
    Required,
    /// Not a token this service signed, or for another sale.
    #[error("the admission token is not valid for this sale")]
    Invalid,
    /// Another buyer's admission.
    #[error("the admission token belongs to another buyer")]
    Foreign,
    /// The admission lapsed.
    #[error("the admission has expired; join the queue again")]
    Expired,
}

impl AdmissionError {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            AdmissionError::Required => "admission_required",
            AdmissionError::Invalid => "admission_invalid",
            AdmissionError::Foreign => "admission_foreign",
            AdmissionError::Expired => "admission_expired",
        }
    }
}

/// Signs and verifies admission tokens.
pub struct AdmissionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AdmissionKeys {
    /// Keys derived from `secret` for admissions only.
    pub fn derive(secret: &[u8]) -> Self {
        use hmac::Mac;
        let key = super::derived_mac(secret, b"seckill/waiting-room/admission/v1")
            .finalize()
            .into_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "sub"]);
        validation.validate_nbf = true;
        // The audience is compared by the caller, to tell another sale's token apart.
        validation.validate_aud = false;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A signed token for these claims.
    pub fn mint(&self, claims: &AdmissionClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The claims of `token` if it admits `user` to `sale_id` now.
    ///
    /// # Errors
    /// Missing, invalid or another sale's, another buyer's, or expired.
    pub fn verify(
        &self,
        token: Option<&str>,
        sale_id: u64,
        user: &str,
    ) -> Result<AdmissionClaims, AdmissionError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let token = token.ok_or(AdmissionError::Required)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(AdmissionError::Invalid);
        }
        let claims =
            jsonwebtoken::decode::<AdmissionClaims>(token, &self.decoding, &self.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AdmissionError::Expired,
                    _ => AdmissionError::Invalid,
                })?
                .claims;
        if claims.aud != audience(sale_id) {
            return Err(AdmissionError::Invalid);
        }
        if claims.sub != user {
            return Err(AdmissionError::Foreign);
        }
        Ok(claims)
    }
}

/// The audience of a sale's admissions.
pub fn audience(sale_id: u64) -> String {
    format!("sale:{sale_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: u64) -> AdmissionClaims {
        AdmissionClaims {
            aud: audience(3),
            sub: "alice".into(),
            nbf: now - 1,
            exp: now + 60,
            pos: 9,
            jat: now - 30,
        }
    }

    #[test]
    fn a_token_admits_its_buyer_to_its_sale_only() {
        let keys = AdmissionKeys::derive(b"secret");
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys.mint(&claims(now));
        assert_eq!(keys.verify(Some(&token), 3, "alice"), Ok(claims(now)));
        assert_eq!(
            keys.verify(Some(&token), 4, "alice"),
            Err(AdmissionError::Invalid)
        );
        assert_eq!(
            keys.verify(Some(&token), 3, "bob"),
            Err(AdmissionError::Foreign)
        );
        assert_eq!(keys.verify(None, 3, "alice"), Err(AdmissionError::Required));
        let other = AdmissionKeys::derive(b"other").mint(&claims(now));
        assert_eq!(
            keys.verify(Some(&other), 3, "alice"),
            Err(AdmissionError::Invalid)
        );
    }

    #[test]
    fn a_lapsed_admission_is_expired() {
        let keys = AdmissionKeys::derive(b"secret");
        let now = jsonwebtoken::get_current_timestamp();
        let mut c = claims(now);
        c.nbf = now - 100;
        c.exp = now - LEEWAY_SECS - 1;
        let token = keys.mint(&c);
        assert_eq!(
            keys.verify(Some(&token), 3, "alice"),
            Err(AdmissionError::Expired)
        );
    }
}
