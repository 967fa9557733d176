//! Portable integer randomness helpers: hashing, bounded draws, the Zipf-like sampler.
//!
//! Everything here uses integer arithmetic or IEEE-754 operations that are
//! correctly rounded on every platform (`+ - * /` and `sqrt`), never `ln`/`exp`/
//! `powf`, whose results come from the platform's libm and may differ by an ulp
//! between machines. One flipped sample would change every byte after it.

use rand::RngCore;

/// The splitmix64 finalizer: a bijection on `u64` with good avalanche.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A keyed hash of `(key, x)`; bijective in `x` for a fixed key.
pub(crate) const fn hash(key: u64, x: u64) -> u64 {
    mix64(x.wrapping_add(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.rotate_left(17))
}

/// Maps 64 random bits to `[0, n)` (Lemire's multiply-shift; the bias is < n / 2^64).
#[inline]
pub(crate) fn bounded(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

/// 64 random bits to a float in `[0, 1)` with 53 bits of precision (exact).
#[inline]
pub(crate) fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Small convenience layer over the generator's RNG.
pub(crate) trait Draw {
    /// A uniform integer in `[0, n)`; `n` must be at least 1.
    fn below(&mut self, n: u64) -> u64;
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u32) -> bool;
    /// An index into a table of cumulative weights (last entry = total).
    fn weighted(&mut self, cumulative: &[u32]) -> usize;
}

impl<R: RngCore> Draw for R {
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        bounded(self.next_u64(), n)
    }

    #[inline]
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    #[inline]
    fn weighted(&mut self, cumulative: &[u32]) -> usize {
        pick_weighted(cumulative, self.next_u64())
    }
}

/// Picks an index from cumulative weights using 64 random (or hashed) bits.
#[inline]
pub(crate) fn pick_weighted(cumulative: &[u32], bits: u64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0);
    if total == 0 {
        return 0;
    }
    let x = bounded(bits, u64::from(total)) as u32;
    // Tables are short (< 64 entries); a linear scan beats binary search here.
    cumulative
        .iter()
        .position(|&c| x < c)
        .unwrap_or(cumulative.len() - 1)
}

/// Zipf-Mandelbrot-like ranks over `[0, n)`: `P(rank = r) ~ (r + q)^-0.75`.
///
/// Inverse-CDF sampling of the continuous density `(x + q)^-(1 - 1/4)`: with
/// `a = q^(1/4)` and `b = (n + q)^(1/4)`, `x = (a + U (b - a))^4 - q`. The fourth
/// roots are two square roots, so the sampler is bit-exact on every platform.
/// With `q = 1` and a million users the top 1% of users get ~30% of the draws
/// and the single heaviest user ~0.5%.
#[derive(Debug, Clone)]
pub(crate) struct PowerLaw {
    n: u64,
    q: f64,
    a: f64,
    span: f64,
}

impl PowerLaw {
    pub(crate) fn new(n: u64, q: f64) -> Self {
        let n = n.max(1);
        let a = q.sqrt().sqrt();
        let b = (n as f64 + q).sqrt().sqrt();
        Self {
            n,
            q,
            a,
            span: b - a,
        }
    }

    #[inline]
    pub(crate) fn sample(&self, bits: u64) -> u64 {
        let y = self.a + unit_f64(bits) * self.span;
        let y2 = y * y;
        let x = y2 * y2 - self.q;
        // `as` saturates (NaN -> 0), and the clamp keeps rounding at the top edge in range.
        (x.max(0.0) as u64).min(self.n - 1)
    }
}

/// Greatest common divisor (for picking a multiplier coprime to the user count).
pub(crate) const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// A bijection on `[0, n)`: `x -> (x * mul + add) mod n` with `gcd(mul, n) = 1`.
/// Scatters Zipf ranks over user numbers so `user-1` is not always the heaviest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scatter {
    n: u64,
    mul: u64,
    add: u64,
}

impl Scatter {
    pub(crate) fn new(n: u64, key: u64) -> Self {
        let n = n.max(1);
        // Golden-ratio stride, nudged to the next value coprime with n.
        let mut mul = ((n as f64 * 0.618_033_988_749_895) as u64) | 1;
        while gcd(mul, n) != 1 {
            mul += 1;
        }
        Self {
            n,
            mul: mul % n.max(2),
            add: key % n,
        }
    }

    #[inline]
    pub(crate) fn apply(&self, x: u64) -> u64 {
        ((u128::from(x) * u128::from(self.mul) + u128::from(self.add)) % u128::from(self.n)) as u64
    }
}

/// Lowercase hex of `x`, all 16 digits, appended to `out`.
pub(crate) fn push_hex16(out: &mut String, x: u64) {
    push_hex(out, x, 16);
}

/// Lowercase hex of the low `digits` nibbles of `x`, appended to `out`.
pub(crate) fn push_hex(out: &mut String, x: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(char::from(HEX[((x >> (shift * 4)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_is_a_bijection() {
        for n in [1u64, 2, 3, 10, 97, 100, 1000, 4096] {
            let s = Scatter::new(n, 12345);
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = s.apply(x) as usize;
                assert!(!seen[y], "n={n}: {y} hit twice");
                seen[y] = true;
            }
        }
    }

    #[test]
    fn power_law_stays_in_range_and_is_skewed() {
        let p = PowerLaw::new(1000, 1.0);
        assert_eq!(p.sample(0), 0);
        assert_eq!(p.sample(u64::MAX), 999);
        let mut hits = [0u64; 1000];
        for i in 0..200_000u64 {
            hits[p.sample(mix64(i)) as usize] += 1;
        }
        let top10: u64 = hits[..10].iter().sum();
        assert!(top10 > 200_000 / 10, "top 1% got only {top10}");
    }

    #[test]
    fn weighted_respects_zero_total() {
        assert_eq!(pick_weighted(&[], 7), 0);
        assert_eq!(pick_weighted(&[0, 0], 7), 0);
        assert_eq!(pick_weighted(&[1, 1, 5], 0), 0);
        assert_eq!(pick_weighted(&[1, 1, 5], u64::MAX), 2);
    }
}
