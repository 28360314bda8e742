//! The proof of work a join carries when the sale asks for one: a nonce such that
//! SHA-256(challenge ":" nonce) starts with at least `bits` zero bits.

use sha2::{Digest, Sha256};

/// The most bits the crowd solves (`--pow-bits` takes no more; a challenge asking more is
/// not attempted).
pub(crate) const MAX_BITS: u32 = 32;

/// The first nonce (decimal, tried from 0 up) whose hash with `challenge` has at least `bits`
/// leading zero bits. About 2^bits hashes on average; `bits` is at most 32 (`--pow-bits`),
/// so a nonce always exists well within `u64`.
pub(crate) fn solve(challenge: &str, bits: u32) -> u64 {
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    let mut digits = [0u8; 20];
    (0..u64::MAX)
        .find(|nonce| {
            let mut h = prefix.clone();
            h.update(decimal(*nonce, &mut digits));
            leading_zero_bits(&h.finalize()) >= bits
        })
        .unwrap_or(u64::MAX)
}

/// The zero bits at the start of `hash`.
pub(crate) fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// `n` in decimal, written at the end of `buf` (no allocation per nonce).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True when `nonce` solves `challenge` at `bits` (what the server checks), by the text.
    fn verify(challenge: &str, nonce: u64, bits: u32) -> bool {
        let hash = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
        leading_zero_bits(&hash) >= bits
    }

    #[test]
    fn leading_zero_bits_count_whole_bytes_and_the_first_set_bit() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x01, 0xff]), 7);
        assert_eq!(leading_zero_bits(&[0x00, 0x20]), 10);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn decimals_are_written_as_to_string_does() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 12_345, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn the_solver_finds_the_first_nonce_with_the_bits() {
        for bits in [0, 1, 8, 14] {
            let challenge = format!("c-{bits}-abc.def");
            let nonce = solve(&challenge, bits);
            assert!(verify(&challenge, nonce, bits), "{bits}: {nonce}");
            assert!(
                (0..nonce).all(|n| !verify(&challenge, n, bits)),
                "the first"
            );
        }
        assert_eq!(solve("anything", 0), 0);
    }
}
