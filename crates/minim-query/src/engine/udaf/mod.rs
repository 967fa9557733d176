//! Minim's aggregate functions (funnel, retention, exact quantile, bucket counts), registered from one
//! list, [`aggregates`]. One file per function, each opening with its exact semantics:
//!
//! - `window_funnel(window_ms, ts, c1, ..., cn) -> BIGINT` ([`window_funnel`]): ClickHouse
//!   `windowFunnel(window)`, default mode.
//! - `funnel_chain(window_ms, ts, breakdown, c1, ..., cn) -> STRUCT<level, times,
//!   breakdown>` ([`funnel_chain`]): the level plus the chain and breakdown value that
//!   `reference::funnel` reports for a user.
//! - `retention(c1, ..., cn) -> LIST<UINT8>` ([`retention`]): ClickHouse `retention`.
//! - `retention_periods(start_period, return_period, width) -> STRUCT<starts, returns>`
//!   ([`retention_periods`]): the period indices seen, as bitsets read by [`bit_is_set`].
//! - `quantile_exact(value, level) -> DOUBLE` ([`quantile_exact`]): ClickHouse
//!   `quantileExact(level)`.
//! - `bucket_counts(bucket, width) -> STRUCT<buckets, counts>` ([`bucket_counts`]): rows
//!   per bucket index, the buckets that have rows.
//!
//! All of them: both an `Accumulator` and a vectorized `GroupsAccumulator`, intermediate
//! state for multi-phase aggregation, `EmitTo::First`, `size()` in bytes held; NULL
//! inputs count as false/absent; constant arguments must be literals (a plan error
//! otherwise); `ORDER BY` inside the call is ignored (the answers do not depend on order).
//! Shared pieces: [`common`] (argument checks, adapters), [`funnel`] (funnel storage and
//! scan).

mod bucket_counts;
mod common;
mod funnel;
mod funnel_chain;
mod quantile_exact;
mod retention;
mod retention_periods;
mod window_funnel;

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

pub(crate) use {
    bucket_counts::BUCKET_COUNTS, funnel_chain::FUNNEL_CHAIN, quantile_exact::QUANTILE_EXACT,
    retention_periods::RETENTION_PERIODS,
};

/// Every Minim aggregate function: the one list to extend.
fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(window_funnel::WindowFunnel::new()),
        AggregateUDF::from(funnel_chain::FunnelChain::new()),
        AggregateUDF::from(retention::Retention::new()),
        AggregateUDF::from(retention_periods::RetentionPeriods::new()),
        AggregateUDF::from(quantile_exact::QuantileExact::new()),
        AggregateUDF::from(bucket_counts::BucketCounts::new()),
    ]
}

/// Registers every Minim aggregate function on `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    for f in aggregates() {
        ctx.register_udaf(f);
    }
}

/// Whether aggregate `name` keeps (a compact form of) every input row until it is
/// evaluated, so a partial aggregation stage would shrink nothing (see `one_stage.rs`).
pub(crate) fn keeps_rows(name: &str) -> bool {
    [
        window_funnel::WINDOW_FUNNEL,
        FUNNEL_CHAIN,
        RETENTION_PERIODS,
        QUANTILE_EXACT,
    ]
    .contains(&name)
}

/// Bit `i` of a `retention_periods` bitset: bit `i % 8` (from the least significant) of
/// byte `i / 8`; false past the end.
pub(crate) fn bit_is_set(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| (b >> (i % 8)) & 1 == 1)
}

/// The indices of the set bits of a `retention_periods` bitset, ascending (the `i` for
/// which [`bit_is_set`] is true), visiting set bits only.
pub(crate) fn set_bits(bits: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(at, &byte)| {
        let mut rest = byte;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                at * 8 + bit
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_lsb_first_and_false_past_the_end() {
        let bits = [0b0000_0101, 0b1000_0000];
        let set: Vec<usize> = (0..20).filter(|&i| bit_is_set(&bits, i)).collect();
        assert_eq!(set, vec![0, 2, 15]);
        assert!(!bit_is_set(&[], 0));
        assert_eq!(set_bits(&bits).collect::<Vec<_>>(), set);
        assert_eq!(set_bits(&[]).count(), 0);
    }
}
