//! The payment provider's signature: hex HMAC-SHA256 of the raw notification body with the
//! shared secret, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a notification's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Signature` header.
    #[error("the X-Signature header is missing")]
    Missing,
    /// Not 64 hex digits.
    #[error("X-Signature is not a hex HMAC-SHA256")]
    Malformed,
    /// A signature of another body or secret.
    #[error("X-Signature does not match the body")]
    Mismatch,
}

/// Checks `signature` (hex) against `body` signed with `secret`.
///
/// # Errors
/// Missing, malformed, or not the body's signature.
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), SignatureError> {
    let hex_sig = signature.ok_or(SignatureError::Missing)?.trim();
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// The hex signature of `body` (what a provider sends; tests and the quickstart use it).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_of_the_body_passes_and_anything_else_fails() {
        let body = br#"{"order_id":"x","amount_cents":100,"provider_ref":"p"}"#;
        let sig = sign(b"secret", body);
        assert_eq!(verify(b"secret", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify(b"other", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", b"{}", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", body, Some("zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify(b"secret", body, None), Err(SignatureError::Missing));
    }

    #[test]
    fn a_known_vector_matches() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
