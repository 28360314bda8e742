//! How fair an order is: Kendall's tau between two rankings (O(n log n), tau-b when there are
//! ties), its z-score under a uniformly random order, and a chi-square test of deciles.

use serde::Serialize;

/// Kendall's tau-b between `pairs`' first and second members: 1 when they order the same,
/// −1 when opposite, near 0 when unrelated. Ties count as in tau-b (so tau is tau-a without
/// ties). `None` with fewer than two pairs or when one side is all ties.
///
/// Knight's algorithm: sort by (x, y), count the pairs tied in x, in y and in both, then count
/// the discordant pairs as the swaps of a merge sort by y.
pub(crate) fn kendall_tau(pairs: &[(u64, u64)]) -> Option<f64> {
    let n = pairs.len() as u64;
    if n < 2 {
        return None;
    }
    let mut v = pairs.to_vec();
    v.sort_unstable();
    let all = n * (n - 1) / 2;
    let tied_x = tied_pairs(&v, |p| p.0);
    let tied_xy = tied_pairs(&v, |p| *p);
    let mut ys: Vec<u64> = v.iter().map(|p| p.1).collect();
    let discordant = merge_swaps(&mut ys);
    let tied_y = tied_pairs(&ys, |y| *y);
    let concordant_minus = (all + tied_xy) as f64 - tied_x as f64 - tied_y as f64;
    let s = concordant_minus - 2.0 * discordant as f64;
    let denom = ((all - tied_x) as f64 * (all - tied_y) as f64).sqrt();
    (denom > 0.0).then(|| s / denom)
}

/// Pairs of neighbours equal under `key` in the sorted `v`, as Σ t(t−1)/2 over the runs.
fn tied_pairs<T, K: PartialEq>(v: &[T], key: impl Fn(&T) -> K) -> u64 {
    let mut total = 0;
    let mut run = 1u64;
    for w in v.windows(2) {
        if key(&w[0]) == key(&w[1]) {
            run += 1;
        } else {
            total += run * (run - 1) / 2;
            run = 1;
        }
    }
    total + run * (run - 1) / 2
}

/// Sorts `v` (a stable merge sort) and returns how many pairs it found strictly inverted.
fn merge_swaps(v: &mut [u64]) -> u64 {
    let n = v.len();
    let mut buf = v.to_vec();
    let mut swaps = 0;
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            swaps += merge(&v[lo..mid], &v[mid..hi], &mut buf[lo..hi]);
            lo = hi;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
    swaps
}

/// Merges the sorted `a` and `b` into `out`; returns the pairs (x in a, y in b) with x > y.
fn merge(a: &[u64], b: &[u64], out: &mut [u64]) -> u64 {
    let (mut i, mut j, mut swaps) = (0, 0, 0);
    for slot in out.iter_mut() {
        if j >= b.len() || (i < a.len() && a[i] <= b[j]) {
            *slot = a[i];
            i += 1;
        } else {
            *slot = b[j];
            swaps += (a.len() - i) as u64;
            j += 1;
        }
    }
    swaps
}

/// The z-score of `tau` over `n` pairs under the null of a uniformly random order
/// (variance 2(2n+5) / (9n(n−1))).
pub(crate) fn tau_z(tau: f64, n: u64) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    tau / (2.0 * (2.0 * n + 5.0) / (9.0 * n * (n - 1.0))).sqrt()
}

/// A chi-square test of independence of two rankings' deciles.
#[derive(Debug, Clone, Serialize)]
pub struct ChiSquare {
    /// The statistic over the 10×10 table of (decile by the first, decile by the second).
    pub statistic: f64,
    /// Degrees of freedom: 81.
    pub dof: u32,
    /// The upper tail probability (Wilson–Hilferty normal approximation).
    pub p_value: f64,
    /// `p_value` > 0.001: no evidence against independence.
    pub passes: bool,
}

/// The chi-square test of the deciles of `pairs` (first by rank of `.0`, then by rank of `.1`,
/// ranks in `0..n`): each cell expects n/100. `None` with fewer than 10 pairs.
pub(crate) fn decile_chi_square(pairs: &[(u64, u64)]) -> Option<ChiSquare> {
    let n = pairs.len();
    if n < 10 {
        return None;
    }
    let rank_x = ranks(pairs.iter().map(|p| p.0));
    let rank_y = ranks(pairs.iter().map(|p| p.1));
    let mut table = [[0u64; 10]; 10];
    for (rx, ry) in rank_x.iter().zip(&rank_y) {
        table[rx * 10 / n][ry * 10 / n] += 1;
    }
    let rows: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<u64> = (0..10).map(|c| table.iter().map(|r| r[c]).sum()).collect();
    let mut statistic = 0.0;
    for (r, row) in table.iter().enumerate() {
        for (c, observed) in row.iter().enumerate() {
            let expected = rows[r] as f64 * cols[c] as f64 / n as f64;
            statistic += (*observed as f64 - expected).powi(2) / expected;
        }
    }
    let dof = 81;
    let p_value = chi_square_upper_tail(statistic, dof);
    Some(ChiSquare {
        statistic,
        dof,
        p_value,
        passes: p_value > 0.001,
    })
}

/// The rank (0-based, ties broken by position) of each value.
fn ranks(values: impl Iterator<Item = u64>) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = values.enumerate().map(|(i, v)| (v, i)).collect();
    order.sort_unstable();
    let mut rank = vec![0; order.len()];
    for (r, (_, i)) in order.iter().enumerate() {
        rank[*i] = r;
    }
    rank
}

/// P(X ≥ x) for X chi-square with `k` degrees of freedom, by Wilson–Hilferty: (X/k)^(1/3) is
/// about normal with mean 1 − 2/(9k) and variance 2/(9k).
pub(crate) fn chi_square_upper_tail(x: f64, k: u32) -> f64 {
    let k = f64::from(k);
    let v = 2.0 / (9.0 * k);
    let z = ((x / k).cbrt() - (1.0 - v)) / v.sqrt();
    normal_upper_tail(z)
}

/// P(Z ≥ z) for a standard normal Z (Abramowitz–Stegun 7.1.26 for erfc, error < 1.5e-7).
pub(crate) fn normal_upper_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

#[cfg(test)]
#[path = "fairness_tests.rs"]
mod tests;
