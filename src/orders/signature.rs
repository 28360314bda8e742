//! The payment provider's signature, in the manner of Stripe's signed webhooks: the header
//! `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the shared
//! secret. The timestamp is signed with the body, so a captured notification cannot be sent
//! again later with a fresh time: one outside [`TOLERANCE`] of the server's clock is refused,
//! and one inside it is refused as a replay once it was seen (see `api::payments`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a notification's timestamp may be from the server's clock, either way.
pub(crate) const TOLERANCE_SECS: i64 = 300;

/// Why a notification's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Signature` header.
    #[error("the X-Signature header is missing")]
    Missing,
    /// Not `t=<unix seconds>,v1=<64 hex digits>`.
    #[error("X-Signature is not t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    /// A signature of another body, time or secret.
    #[error("X-Signature does not match the body and its timestamp")]
    Mismatch,
    /// Signed too long ago, or in the future.
    #[error("X-Signature's timestamp is more than 300 seconds from the server's clock")]
    OutsideTolerance,
}

/// A verified signature: what identifies the notification for replay detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// When the provider signed it, Unix seconds.
    pub timestamp: i64,
    /// The MAC itself.
    pub mac: [u8; 32],
}

fn parse(header: &str) -> Result<(i64, [u8; 32]), SignatureError> {
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => return Err(SignatureError::Malformed),
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    let mac: [u8; 32] = v1.try_into().map_err(|_| SignatureError::Malformed)?;
    Ok((t, mac))
}

fn mac_of(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks the header value `signature` against `body` signed with `secret`, at `now` (Unix
/// seconds).
///
/// # Errors
/// Missing, malformed, not the body's signature, or signed outside the tolerance.
pub fn verify(
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
    now: i64,
) -> Result<Signed, SignatureError> {
    let (timestamp, given) = parse(signature.ok_or(SignatureError::Missing)?.trim())?;
    mac_of(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(Signed {
        timestamp,
        mac: given,
    })
}

/// The `X-Signature` value for `body` signed at `timestamp` (what a provider sends; tests and
/// the quickstart use it).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = mac_of(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"order_id":"x","amount_cents":100,"provider_ref":"p"}"#;

    #[test]
    fn a_signature_of_the_body_and_its_time_passes_and_anything_else_fails() {
        let sig = sign(b"secret", NOW, BODY);
        let ok = verify(b"secret", BODY, Some(&sig), NOW).unwrap();
        assert_eq!(ok.timestamp, NOW);
        assert_eq!(
            verify(b"other", BODY, Some(&sig), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", b"{}", Some(&sig), NOW),
            Err(SignatureError::Mismatch)
        );
        // The time is signed: moving it breaks the signature.
        let moved = sig.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(b"secret", BODY, Some(&moved), NOW),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "zz",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=abcd",
            "t=1,v2=00",
        ] {
            assert_eq!(
                verify(b"secret", BODY, Some(bad), NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(b"secret", BODY, None, NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_notification_signed_outside_five_minutes_is_refused() {
        for at in [NOW - TOLERANCE_SECS - 1, NOW + TOLERANCE_SECS + 1] {
            let sig = sign(b"secret", at, BODY);
            assert_eq!(
                verify(b"secret", BODY, Some(&sig), NOW),
                Err(SignatureError::OutsideTolerance),
                "signed at {at}"
            );
        }
        for at in [NOW - TOLERANCE_SECS, NOW + TOLERANCE_SECS] {
            let sig = sign(b"secret", at, BODY);
            assert!(verify(b"secret", BODY, Some(&sig), NOW).is_ok(), "{at}");
        }
    }

    #[test]
    fn a_known_vector_matches() {
        // HMAC-SHA256 of "0.what do ya want for nothing?" with the key "Jefe" (RFC 4231's
        // case 2 with the timestamp prefix), computed independently with Python's hmac.
        assert_eq!(
            sign(b"Jefe", 0, b"what do ya want for nothing?"),
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }
}
