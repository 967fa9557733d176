//! Exact quantiles with ClickHouse `quantileExact` semantics, and deterministic sums.

/// ClickHouse `quantileExact(level)` over `sorted` (ascending): the element at 0-based
/// index `floor(level * n)` for `level < 1`, the last element for `level >= 1`; `None`
/// when empty. No interpolation: `p50` of `[1, 2, 3, 4]` is `3` (the upper median).
/// The index is computed in f64 exactly as ClickHouse does (`level * n`, truncated).
pub fn quantile_exact(sorted: &[f64], level: f64) -> Option<f64> {
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "input must be sorted"
    );
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let idx = if level < 1.0 {
        // `as` saturates; level * n < n for level < 1, so idx < n.
        ((level.max(0.0) * n as f64) as usize).min(n - 1)
    } else {
        n - 1
    };
    sorted.get(idx).copied()
}

/// `values` sorted ascending (total order; JSON numbers are never NaN).
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// Sum of `sorted` in ascending order, so that the result does not depend on input order.
pub fn sum_sorted(sorted: &[f64]) -> f64 {
    sorted.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_clickhouse_quantile_exact() {
        assert_eq!(quantile_exact(&[], 0.5), None);
        assert_eq!(quantile_exact(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile_exact(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile_exact(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(3.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile_exact(&ten, 0.9), Some(10.0)); // floor(0.9 * 10) = 9
        assert_eq!(quantile_exact(&ten, 0.5), Some(6.0)); // floor(0.5 * 10) = 5
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_exact(&hundred, 0.99), Some(100.0)); // 0.99 * 100 rounds to 99.0
        assert_eq!(quantile_exact(&hundred, 0.9), Some(91.0));
        assert_eq!(quantile_exact(&hundred, 1.0), Some(100.0));
    }
}
