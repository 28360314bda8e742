//! Tests of the fairness figures: the fast tau against the pairwise definition, the z-score
//! and the chi-square test on shuffled and sorted orders.

use super::*;

/// Kendall's tau-b by its definition, over every pair.
fn naive_tau(pairs: &[(u64, u64)]) -> Option<f64> {
    let n = pairs.len();
    let (mut s, mut tied_x, mut tied_y) = (0i64, 0u64, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = pairs[i].0.cmp(&pairs[j].0) as i64;
            let dy = pairs[i].1.cmp(&pairs[j].1) as i64;
            s += dx * dy;
            tied_x += u64::from(dx == 0);
            tied_y += u64::from(dy == 0);
        }
    }
    let all = (n * n.saturating_sub(1) / 2) as u64;
    let denom = ((all - tied_x) as f64 * (all - tied_y) as f64).sqrt();
    (denom > 0.0).then(|| s as f64 / denom)
}

/// A deterministic stream of numbers (splitmix64).
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        crate::run::user_of(self.0, n)
    }

    /// `0..n` in a uniformly random order (Fisher–Yates).
    fn shuffled(&mut self, n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }

    /// (join order, position) of `n` users drawn in a uniformly random order.
    fn drawn(&mut self, n: u64) -> Vec<(u64, u64)> {
        (0..n).zip(self.shuffled(n)).collect()
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-12,
        (a, b) => a.is_none() && b.is_none(),
    }
}

#[test]
fn the_fast_tau_is_the_pairwise_tau_on_hand_made_orders() {
    let cases: [&[(u64, u64)]; 7] = [
        &[(0, 0), (1, 1), (2, 2)],
        &[(0, 2), (1, 1), (2, 0)],
        &[(0, 1), (1, 0), (2, 2), (3, 3)],
        &[(0, 0), (0, 1), (1, 1), (2, 0)],
        &[(1, 1), (1, 1), (2, 2)],
        &[(5, 5)],
        &[(1, 3), (1, 3)],
    ];
    for pairs in cases {
        let (fast, naive) = (kendall_tau(pairs), naive_tau(pairs));
        assert!(close(fast, naive), "{pairs:?}: {fast:?} vs {naive:?}");
    }
    assert_eq!(kendall_tau(&[(0, 0), (1, 1), (2, 2)]), Some(1.0));
    assert_eq!(kendall_tau(&[(0, 2), (1, 1), (2, 0)]), Some(-1.0));
    assert_eq!(kendall_tau(&[(1, 3), (1, 3)]), None, "all ties");
}

#[test]
fn the_fast_tau_is_the_pairwise_tau_on_random_orders_with_and_without_ties() {
    let mut mix = Mix(7);
    for round in 0..200 {
        let n = 2 + mix.below(60);
        // Small value ranges make ties; large ones make none.
        let range = if round % 2 == 0 { 5 } else { 1_000_000 };
        let pairs: Vec<(u64, u64)> = (0..n)
            .map(|_| (mix.below(range), mix.below(range)))
            .collect();
        let (fast, naive) = (kendall_tau(&pairs), naive_tau(&pairs));
        assert!(close(fast, naive), "{pairs:?}: {fast:?} vs {naive:?}");
    }
}

#[test]
fn a_sorted_order_has_tau_one_and_a_huge_z() {
    let pairs: Vec<(u64, u64)> = (0..10_000).map(|i| (i, i)).collect();
    let tau = kendall_tau(&pairs).unwrap();
    assert_eq!(tau, 1.0);
    assert!(tau_z(tau, 10_000) > 100.0);
}

#[test]
fn a_shuffled_order_has_a_small_tau_z() {
    let pairs = Mix(42).drawn(10_000);
    let tau = kendall_tau(&pairs).unwrap();
    let z = tau_z(tau, 10_000);
    assert!(z.abs() < 4.0, "tau {tau} z {z}");
    assert!(tau.abs() < 0.03, "tau {tau}");
}

#[test]
fn the_chi_square_passes_a_shuffle_and_fails_the_identity() {
    let shuffled = Mix(1).drawn(10_000);
    let c = decile_chi_square(&shuffled).unwrap();
    assert!(c.passes, "{c:?}");
    assert_eq!(c.dof, 81);
    assert!(c.statistic > 40.0 && c.statistic < 140.0, "{c:?}");
    let identity: Vec<(u64, u64)> = (0..10_000).map(|i| (i, i)).collect();
    let c = decile_chi_square(&identity).unwrap();
    assert!(!c.passes, "{c:?}");
    assert!(c.p_value < 1e-6);
    assert!(decile_chi_square(&identity[..9]).is_none());
}

#[test]
fn the_normal_and_chi_square_tails_match_tables() {
    assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-6);
    assert!((normal_upper_tail(1.96) - 0.025).abs() < 1e-4);
    assert!((normal_upper_tail(-1.96) - 0.975).abs() < 1e-4);
    assert!((normal_upper_tail(3.09) - 0.001).abs() < 1e-4);
    // chi-square 81 dof: median about 80.3, 0.1% point about 126.08.
    assert!((chi_square_upper_tail(80.34, 81) - 0.5).abs() < 0.01);
    assert!((chi_square_upper_tail(126.08, 81) - 0.001).abs() < 0.0003);
}
