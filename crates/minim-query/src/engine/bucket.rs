//! `minim_bucket(timestamp, first_ms, width_ms)`: the index of a row's fixed-width time
//! bucket, `(timestamp - first_ms) / width_ms` (integer division, truncating; callers
//! evaluate it only at or after `first_ms`). Trends and retention group by it.
//!
//! Written out as DataFusion arithmetic it cost ~5% of a daily trend: a checked 64-bit
//! division per row, which does not vectorize. Segments hold one day and arrive in
//! batches of one segment, so a batch usually lies inside one bucket: the function checks
//! that every row lies in the first row's bucket (a vectorized pass, [`one_bucket`]) and
//! then answers with that bucket as a scalar. Otherwise it divides per row, by a
//! constant the compiler can turn into a multiplication for the hour, day and week
//! widths.
//!
//! Never registered: SQL cannot call it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf, lit};
use minim_core::time::MS_PER_DAY;

use crate::time::MS_PER_HOUR;

const NAME: &str = "minim_bucket";

/// The bucket-index expression of `timestamp` (a UTC millisecond timestamp column).
pub(crate) fn bucket_of(timestamp: Expr, first_ms: i64, width_ms: i64) -> Expr {
    udf().call(vec![timestamp, lit(first_ms), lit(width_ms)])
}

fn udf() -> ScalarUDF {
    create_udf(
        NAME,
        vec![
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            DataType::Int64,
            DataType::Int64,
        ],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let [ts, first, width] = args else {
                return Err(internal("takes 3 arguments"));
            };
            let constant = |v: &ColumnarValue| match v {
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) => Ok(*n),
                _ => Err(internal("takes constant first_ms and width_ms")),
            };
            let (first, width) = (constant(first)?, constant(width)?);
            if width <= 0 {
                return Err(internal("takes a positive width"));
            }
            match ts {
                ColumnarValue::Scalar(s) => {
                    let array = s.to_array()?;
                    let out = buckets(&array, first, width)?.into_array(1)?;
                    Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
                }
                ColumnarValue::Array(array) => buckets(array, first, width),
            }
        }),
    )
}

fn internal(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("{NAME} {what}"))
}

fn overflow() -> DataFusionError {
    DataFusionError::Execution(format!("{NAME}: timestamp out of range"))
}

/// The buckets of `array`'s timestamps: a scalar when they all share one.
fn buckets(array: &ArrayRef, first: i64, width: i64) -> Result<ColumnarValue> {
    let ts = array
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| internal("takes a millisecond timestamp"))?;
    let values = ts.values();
    let (Some(&head), true) = (values.first(), ts.null_count() == 0) else {
        // Empty or with NULLs (never in stored events): row by row.
        let out: Int64Array = ts
            .iter()
            .map(|v| v.map(|v| bucket(v, first, width)).transpose())
            .collect::<Result<_>>()?;
        return Ok(ColumnarValue::Array(Arc::new(out)));
    };
    if let Some(b) = one_bucket(values, head, first, width) {
        return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(b))));
    }
    let (min, max) = values
        .iter()
        .fold((head, head), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    bucket(min, first, width)?;
    bucket(max, first, width)?;
    // No row overflows: every offset lies between the two just computed.
    let out: Int64Array = match width {
        MS_PER_HOUR => divide::<MS_PER_HOUR>(values, first),
        MS_PER_DAY => divide::<MS_PER_DAY>(values, first),
        WEEK => divide::<WEEK>(values, first),
        _ => values.iter().map(|&v| (v - first) / width).collect(),
    };
    Ok(ColumnarValue::Array(Arc::new(out)))
}

const WEEK: i64 = 7 * MS_PER_DAY;

/// The bucket of every value, if `head`'s bucket (at or after `first`) holds them all.
///
/// One pass of subtractions and ORs, which vectorizes (64-bit comparisons do not at the
/// baseline x86-64 target): the OR of `v - start` and `last - v` over all values is
/// non-negative exactly when every `v` lies in `[start, last]`. Wrapping cannot fake
/// it: a `v` below `start` far enough for `v - start` to wrap to non-negative is more
/// than 2^63 below `last`, so `last - v` wraps to negative (and symmetrically above).
fn one_bucket(values: &[i64], head: i64, first: i64, width: i64) -> Option<i64> {
    let offset = head.checked_sub(first).filter(|&o| o >= 0)?;
    let index = offset / width;
    let start = first.checked_add(index.checked_mul(width)?)?;
    let last = start.checked_add(width - 1)?;
    let signs = values.iter().fold(0i64, |acc, &v| {
        acc | v.wrapping_sub(start) | last.wrapping_sub(v)
    });
    (signs >= 0).then_some(index)
}

fn divide<const WIDTH: i64>(values: &[i64], first: i64) -> Int64Array {
    values.iter().map(|&v| (v - first) / WIDTH).collect()
}

fn bucket(ms: i64, first: i64, width: i64) -> Result<i64> {
    Ok(ms.checked_sub(first).ok_or_else(overflow)? / width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMillisecondArray;
    use proptest::prelude::*;

    fn run(values: Vec<Option<i64>>, first: i64, width: i64) -> Vec<Option<i64>> {
        let array: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(values.clone()).with_timezone("UTC"));
        let out = buckets(&array, first, width).unwrap();
        let out = out.into_array(values.len()).unwrap();
        out.as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .collect()
    }

    fn expected(values: &[Option<i64>], first: i64, width: i64) -> Vec<Option<i64>> {
        values
            .iter()
            .map(|v| v.map(|v| (v - first) / width))
            .collect()
    }

    #[test]
    fn one_bucket_is_answered_as_a_scalar() {
        let day = 20_000 * MS_PER_DAY;
        let array: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(vec![day + 5, day, day + MS_PER_DAY - 1])
                .with_timezone("UTC"),
        );
        let out = buckets(&array, day - 3 * MS_PER_DAY, MS_PER_DAY).unwrap();
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Int64(Some(3)))
        ));
    }

    #[test]
    fn edges_nulls_and_other_widths() {
        let first = 1_000;
        let values = vec![
            Some(1_000),
            Some(1_000 + MS_PER_DAY - 1),
            Some(1_000 + MS_PER_DAY),
        ];
        assert_eq!(
            run(values, first, MS_PER_DAY),
            vec![Some(0), Some(0), Some(1)]
        );
        let values = vec![Some(1_000), None, Some(1_000 + 3 * MS_PER_HOUR)];
        assert_eq!(
            run(values, first, MS_PER_HOUR),
            vec![Some(0), None, Some(3)]
        );
        assert_eq!(run(vec![], first, MS_PER_HOUR), Vec::<Option<i64>>::new());
        let values = vec![Some(1_000), Some(1_999), Some(2_000), Some(2_005)];
        assert_eq!(
            run(values, first, 1_000),
            vec![Some(0), Some(0), Some(1), Some(1)]
        );
    }

    #[test]
    fn overflow_is_an_error() {
        let array: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![i64::MIN, 0]).with_timezone("UTC"));
        assert!(buckets(&array, 1, MS_PER_DAY).is_err());
    }

    #[test]
    fn one_bucket_holds_at_its_edges_and_not_past_them() {
        let (first, w) = (1_000, MS_PER_DAY);
        let start = first + 4 * w;
        let last = start + w - 1;
        assert_eq!(one_bucket(&[start, last], start, first, w), Some(4));
        assert_eq!(one_bucket(&[start, last + 1], start, first, w), None);
        assert_eq!(one_bucket(&[last, start - 1], last, first, w), None);
        // Far-off values wrap in the subtraction; they are still out.
        for far in [
            i64::MIN,
            i64::MIN + start - 1,
            i64::MAX,
            i64::MAX - 5,
            start - 1 - i64::MAX,
        ] {
            assert_eq!(one_bucket(&[start, far], start, first, w), None, "{far}");
        }
        // Before `first` the general path answers.
        assert_eq!(one_bucket(&[first - 1], first - 1, first, w), None);
        // A bucket whose end passes i64::MAX likewise.
        assert_eq!(one_bucket(&[i64::MAX], i64::MAX, 0, w), None);
    }

    proptest! {
        #[test]
        fn one_bucket_is_the_shared_bucket(
            first in -1_000_000i64..1_000_000,
            width in 1i64..100,
            values in proptest::collection::vec(
                prop_oneof![4 => 0i64..1_000, 1 => any::<i64>()], 1..20),
        ) {
            let values: Vec<i64> =
                values.iter().map(|&v| if v < 1_000 { first + v } else { v }).collect();
            let head = values[0];
            let shared = values
                .iter()
                .map(|&v| v.checked_sub(first).filter(|&o| o >= 0).map(|o| o / width))
                .collect::<Option<Vec<_>>>()
                .filter(|b| b.iter().all(|&x| x == b[0]))
                .map(|b| b[0]);
            prop_assert_eq!(one_bucket(&values, head, first, width), shared);
        }

        #[test]
        fn equals_plain_division(
            first in -1_000_000_000_000i64..2_000_000_000_000,
            // Narrow spreads exercise the one-bucket answer, wide ones the division.
            spread in prop_oneof![Just(1_000i64), Just(MS_PER_HOUR), Just(30 * MS_PER_DAY)],
            offsets in proptest::collection::vec(
                prop_oneof![1 => Just(None), 9 => (0i64..i64::MAX).prop_map(Some)], 0..200),
            width in prop_oneof![
                Just(MS_PER_HOUR), Just(MS_PER_DAY), Just(WEEK), 1i64..10 * MS_PER_DAY],
        ) {
            let values: Vec<Option<i64>> =
                offsets.iter().map(|o| o.map(|o| first + o % spread)).collect();
            prop_assert_eq!(run(values.clone(), first, width), expected(&values, first, width));
        }
    }
}
