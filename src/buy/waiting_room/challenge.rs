//! The proof of work a join may need: a signed challenge naming the sale, the buyer and an
//! expiry; the client finds a nonce whose SHA-256 over `challenge:nonce` starts with the sale's
//! number of zero bits. Checking costs one hash and one MAC, in memory.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Seconds a challenge stays solvable.
pub const CHALLENGE_TTL_SECS: u64 = 300;
/// Longest nonce accepted.
const MAX_NONCE_LEN: usize = 32;

/// Why a solution was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The join carries no solution.
    #[error("this sale's queue needs a solved challenge: GET .../queue/challenge first")]
    Missing,
    /// Not this service's challenge, another buyer's or sale's, or expired.
    #[error("the challenge is not valid for this buyer and sale, or it expired")]
    Foreign,
    /// The hash does not start with enough zero bits.
    #[error("the nonce does not solve the challenge")]
    Unsolved,
}

impl ChallengeError {
    /// The machine-readable code of the answer (403).
    pub fn code(self) -> &'static str {
        match self {
            ChallengeError::Missing => "challenge_required",
            ChallengeError::Foreign | ChallengeError::Unsolved => "challenge_failed",
        }
    }
}

/// Issues and checks challenges with one key.
#[derive(Clone)]
pub struct ChallengeKey(Hmac<Sha256>);

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for b in hash {
        if *b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// True when `nonce` solves `challenge` to `bits` zero bits.
pub fn solves(challenge: &str, nonce: &str, bits: u8) -> bool {
    let hash = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.as_bytes())
        .finalize();
    leading_zero_bits(&hash) >= u32::from(bits)
}

impl ChallengeKey {
    /// A key derived from `secret` for challenges only.
    pub fn derive(secret: &[u8]) -> Self {
        Self(super::derived_mac(
            secret,
            b"seckill/waiting-room/challenge/v1",
        ))
    }

    fn sign(&self, body: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// A new challenge for `user` joining `sale_id`, valid until `now + CHALLENGE_TTL_SECS`.
    pub fn issue(&self, sale_id: u64, user: &str, now: u64) -> String {
        let salt: u64 = rand::random();
        let body = format!("{sale_id}.{}.{salt:016x}", now + CHALLENGE_TTL_SECS);
        let user_mac = self.sign(&format!("{body}.{user}"));
        format!("{body}.{user_mac}")
    }

    /// Checks a solution.
    ///
    /// # Errors
    /// Missing, foreign or expired, or unsolved.
    pub fn check(
        &self,
        solution: Option<(&str, &str)>,
        sale_id: u64,
        user: &str,
        bits: u8,
        now: u64,
    ) -> Result<(), ChallengeError> {
        let (challenge, nonce) = solution.ok_or(ChallengeError::Missing)?;
        let (body, mac) = challenge.rsplit_once('.').ok_or(ChallengeError::Foreign)?;
        let mut parts = body.split('.');
        let sale = parts.next().and_then(|s| s.parse::<u64>().ok());
        let expires = parts.next().and_then(|s| s.parse::<u64>().ok());
        let signed = self.sign(&format!("{body}.{user}"));
        let genuine = bool::from(subtle::ConstantTimeEq::ct_eq(
            signed.as_bytes(),
            mac.as_bytes(),
        ));
        if !genuine || sale != Some(sale_id) || expires.is_none_or(|e| e < now) {
            return Err(ChallengeError::Foreign);
        }
        if nonce.len() > MAX_NONCE_LEN || !solves(challenge, nonce, bits) {
            return Err(ChallengeError::Unsolved);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(challenge: &str, bits: u8) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| solves(challenge, n, bits))
            .unwrap()
    }

    #[test]
    fn a_solved_challenge_admits_its_buyer_only() {
        let key = ChallengeKey::derive(b"s");
        let c = key.issue(7, "alice", 1_000);
        let nonce = solve(&c, 10);
        assert_eq!(key.check(Some((&c, &nonce)), 7, "alice", 10, 1_000), Ok(()));
        assert_eq!(
            key.check(Some((&c, &nonce)), 7, "mallory", 10, 1_000),
            Err(ChallengeError::Foreign)
        );
        assert_eq!(
            key.check(Some((&c, &nonce)), 8, "alice", 10, 1_000),
            Err(ChallengeError::Foreign)
        );
        assert_eq!(
            key.check(
                Some((&c, &nonce)),
                7,
                "alice",
                10,
                1_000 + CHALLENGE_TTL_SECS + 1
            ),
            Err(ChallengeError::Foreign)
        );
        assert_eq!(
            key.check(None, 7, "alice", 10, 1_000),
            Err(ChallengeError::Missing)
        );
    }

    #[test]
    fn an_unsolved_nonce_is_refused() {
        let key = ChallengeKey::derive(b"s");
        let c = key.issue(7, "alice", 1_000);
        let wrong = (0u64..)
            .map(|n| n.to_string())
            .find(|n| !solves(&c, n, 12))
            .unwrap();
        assert_eq!(
            key.check(Some((&c, &wrong)), 7, "alice", 12, 1_000),
            Err(ChallengeError::Unsolved)
        );
        assert_eq!(leading_zero_bits(&[0, 0x10]), 11);
    }
}
