//! The pre-queue draw: a random permutation of `0..n` from a seed, computed per ticket in
//! memory (a Feistel network on the smallest even-bit domain holding `n`, walking cycles until
//! the value falls inside). Every instance with the same seed computes the same positions.

/// Rounds of the network (four make a good pseudo-random permutation).
const ROUNDS: u64 = 4;

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser: every input bit reaches every output bit.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The position of pre-queue index `index` among `n`, under `seed`; `None` when `index >= n`.
pub fn position(seed: u64, n: u64, index: u64) -> Option<u64> {
    if index >= n {
        return None;
    }
    let bits = (64 - (n - 1).max(1).leading_zeros()).div_ceil(2).max(1);
    let mask = (1u64 << bits) - 1;
    let mut x = index;
    loop {
        let (mut left, mut right) = (x >> bits, x & mask);
        for round in 0..ROUNDS {
            let f = mix(seed ^ mix(right ^ (round << 56))) & mask;
            (left, right) = (right, left ^ f);
        }
        x = (left << bits) | right;
        if x < n {
            return Some(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_a_permutation() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let p = position(99, n, i).unwrap() as usize;
                assert!(!seen[p], "n={n}: {p} twice");
                seen[p] = true;
            }
        }
        assert_eq!(position(1, 5, 5), None);
    }

    #[test]
    fn seeds_give_different_orders_and_the_order_is_not_arrival() {
        let a: Vec<u64> = (0..100).map(|i| position(1, 100, i).unwrap()).collect();
        let b: Vec<u64> = (0..100).map(|i| position(2, 100, i).unwrap()).collect();
        assert_ne!(a, b);
        let fixed = a
            .iter()
            .enumerate()
            .filter(|(i, p)| *i as u64 == **p)
            .count();
        assert!(fixed < 10, "{fixed} of 100 kept their arrival place");
    }
}
