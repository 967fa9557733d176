//! Scalar functions over the `properties` JSON column: `prop_str(properties, name)` is a
//! property's string form and `prop_num(properties, name)` its numeric value, exactly as
//! `crate::props` defines them for the reference implementations.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Builder, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use super::per_user::inline_value;
use crate::props;

pub const PROP_STR: &str = "prop_str";
pub const PROP_NUM: &str = "prop_num";

pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        PROP_STR,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            map_properties(args, |text, lookup, out: &mut StringBuilder| {
                out.append_option(lookup.string(text));
            })
        }),
    ));
    ctx.register_udf(create_udf(
        PROP_NUM,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            map_properties(args, |text, lookup, out: &mut Float64Builder| {
                out.append_option(lookup.number(text));
            })
        }),
    ));
}

/// `minim_redact(properties)`: the properties text with the values of `names` replaced by
/// [`super::REDACTED`]; `None` when nothing is redacted. Built per session (the names
/// depend on the reader), never registered, so SQL cannot call or bypass it.
pub(crate) fn redactor(names: &[String]) -> Option<datafusion::logical_expr::ScalarUDF> {
    if names.is_empty() {
        return None;
    }
    let remover = minim_store::PropRemover::new(names.iter().cloned());
    Some(create_udf(
        "minim_redact",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let [properties] = args else {
                return Err(DataFusionError::Internal(
                    "minim_redact takes 1 argument".into(),
                ));
            };
            let array = properties.to_array(1)?;
            let array = arrow::compute::cast(&array, &DataType::Utf8)?;
            let texts = array
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("properties is not text".into()))?;
            let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
            for i in 0..texts.len() {
                if texts.is_null(i) {
                    out.append_null();
                    continue;
                }
                let text = texts.value(i);
                match remover.replace(text, super::REDACTED) {
                    Some((redacted, _)) => out.append_value(redacted),
                    None => out.append_value(text),
                }
            }
            let result: ArrayRef = Arc::new(out.finish());
            Ok(match properties {
                ColumnarValue::Scalar(_) => {
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
                }
                ColumnarValue::Array(_) => ColumnarValue::Array(result),
            })
        }),
    ))
}

/// `minim_merge_personal(properties, personal)`: the properties text with the event's
/// personal values in place ([`minim_core::props::merge_personal`]). Only sessions of
/// readers with personal access build it; never registered, so SQL cannot call it.
pub(crate) fn personal_merger() -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "minim_merge_personal",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let [properties, personal] = args else {
                return Err(DataFusionError::Internal(
                    "minim_merge_personal takes 2 arguments".into(),
                ));
            };
            let rows = match (properties, personal) {
                (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
                _ => 1,
            };
            let props = properties.to_array(rows)?;
            let personal = personal.to_array(rows)?;
            // Most events have no personal value: nothing to merge.
            if personal.null_count() == personal.len() {
                return Ok(ColumnarValue::Array(props));
            }
            let text = |a: &ArrayRef| -> Result<StringArray> {
                let plain = arrow::compute::cast(a, &DataType::Utf8)?;
                plain
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("properties is not text".into()))
            };
            let (props, personal) = (text(&props)?, text(&personal)?);
            let mut out = StringBuilder::with_capacity(rows, props.value_data().len());
            for i in 0..rows {
                match (props.is_valid(i), personal.is_valid(i)) {
                    (false, _) => out.append_null(),
                    (true, false) => out.append_value(props.value(i)),
                    (true, true) => out.append_value(minim_core::props::merge_personal(
                        props.value(i),
                        personal.value(i),
                    )),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// Output builders the property functions write into.
trait Output: Default {
    fn append_null_value(&mut self);
    fn finish_array(self) -> ArrayRef;
}

impl Output for StringBuilder {
    fn append_null_value(&mut self) {
        self.append_null();
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

impl Output for Float64Builder {
    fn append_null_value(&mut self) {
        self.append_null();
    }
    fn finish_array(mut self) -> ArrayRef {
        Arc::new(self.finish())
    }
}

/// Applies `f` to every row's properties text with the (constant) property name.
fn map_properties<O: Output>(
    args: &[ColumnarValue],
    f: impl Fn(&str, &props::RawLookup, &mut O),
) -> Result<ColumnarValue> {
    let [props_arg, name_arg] = args else {
        return Err(DataFusionError::Plan(
            "property functions take (properties, name)".into(),
        ));
    };
    let lookup = match name_arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(n))) => props::RawLookup::new(n),
        _ => {
            return Err(DataFusionError::Plan(
                "the property name must be a string literal".into(),
            ));
        }
    };
    let (array, scalar) = match props_arg {
        ColumnarValue::Array(a) => (a.clone(), false),
        ColumnarValue::Scalar(s) => (s.to_array()?, true),
    };
    let texts = array
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| DataFusionError::Plan("properties must be a string column".into()))?;
    let mut out = O::default();
    for i in 0..texts.len() {
        if texts.is_null(i) {
            out.append_null_value();
            continue;
        }
        f(texts.value(i), &lookup, &mut out);
    }
    let result = out.finish_array();
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}

/// The type of [`user_key`]'s values: 128 bits, grouped and compared as integers.
pub(crate) const USER_KEY_TYPE: DataType = DataType::Decimal128(38, 0);

/// `minim_user_key(distinct_id)`: a 128-bit hash of the user id, which per-user
/// aggregations group by instead of the id text. Hashing and comparing a 16-byte integer
/// is several times cheaper than the ~32-byte ids (longer than a string view's inline
/// prefix, so every comparison is a memcmp). Two different ids get the same key with
/// probability ~n²/2¹²⁹ (1e-25 for 10M users), the same argument ClickHouse's
/// `uniqExact` rests on. The seed is random per process, so nobody can pick ids that
/// collide, and keys are never stored or shown (the values are not valid decimals).
/// Never registered: SQL cannot call it.
pub(crate) fn user_key() -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "minim_user_key",
        vec![DataType::Utf8View],
        USER_KEY_TYPE,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let [ids] = args else {
                return Err(DataFusionError::Internal(
                    "minim_user_key takes 1 argument".into(),
                ));
            };
            let (array, scalar) = match ids {
                ColumnarValue::Array(a) => (a.clone(), false),
                ColumnarValue::Scalar(s) => (s.to_array()?, true),
            };
            let keys: ArrayRef = Arc::new(hash_ids(&array)?.with_precision_and_scale(38, 0)?);
            Ok(if scalar {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&keys, 0)?)
            } else {
                ColumnarValue::Array(keys)
            })
        }),
    )
}

fn user_key_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6d69_6e69_6d5f_7573);
        h.finish()
    })
}

fn hash_ids(array: &ArrayRef) -> Result<arrow::array::Decimal128Array> {
    use arrow::array::AsArray;
    Ok(match array.data_type() {
        DataType::Utf8View => view_keys(array.as_string_view()),
        DataType::Utf8 => keys_of(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => keys_of(array.as_string::<i64>().iter()),
        other => {
            return Err(DataFusionError::Internal(format!(
                "minim_user_key takes text, not {other}"
            )));
        }
    })
}

/// The keys of `ids`, as [`keys_of`] computes them, without its per-row costs: a run of
/// one id usually shares one view (its values decode from a Parquet dictionary page), so
/// the runs of equal views are found first ([`super::run_starts`]) and each takes one key
/// (an equal view means equal text: an id of up to 12 bytes is inside its view; a longer
/// one is at the same place in the same buffer).
fn view_keys(ids: &arrow::array::StringViewArray) -> arrow::array::Decimal128Array {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let seed = user_key_seed();
    let views = ids.views();
    let nulls = ids.nulls().filter(|n| n.null_count() > 0);
    let mut keys: Vec<i128> = Vec::with_capacity(ids.len());
    SCRATCH.with_borrow_mut(|scratch| {
        let starts = super::run_starts(views, nulls, scratch);
        let mut last: Option<(u128, &[u8], i128)> = None;
        for (r, &start) in starts.iter().enumerate() {
            let Some(&view) = views.get(start) else {
                break;
            };
            let rows = starts.get(r + 1).copied().unwrap_or(ids.len()) - start;
            if nulls.is_some_and(|n| n.is_null(start)) {
                keys.extend(std::iter::repeat_n(0, rows));
                continue;
            }
            let id = ids.value(start).as_bytes();
            let key = match last {
                // Two short ids are equal exactly when their views are (padding aside), so
                // a new user's short id never has its bytes compared; long ones (which
                // share prefixes, such as `anon-`) compare their last 8 bytes first.
                Some((v, text, key))
                    if match (inline_value(v), inline_value(view)) {
                        (Some(a), Some(b)) => a == b,
                        _ => text.last_chunk::<8>() == id.last_chunk::<8>() && text == id,
                    } =>
                {
                    key
                }
                // Reinterpreting the hash's bits: a key, not a number.
                _ => twox_hash::XxHash3_128::oneshot_with_seed(seed, id) as i128,
            };
            last = Some((view, id, key));
            keys.extend(std::iter::repeat_n(key, rows));
        }
    });
    arrow::array::Decimal128Array::new(keys.into(), ids.nulls().cloned())
}

/// The keys of `ids`. Segments hold each user's events of an event name together (sorted
/// by event, then `distinct_id`), several per day, so an id equal to the one before reuses
/// its key instead of hashing again.
fn keys_of<'a>(ids: impl Iterator<Item = Option<&'a str>>) -> arrow::array::Decimal128Array {
    let seed = user_key_seed();
    let mut last: Option<(&str, i128)> = None;
    ids.map(|id| {
        let id = id?;
        if let Some((prev, key)) = last
            && prev == id
        {
            return Some(key);
        }
        // Reinterpreting the hash's bits: a key, not a number.
        let key = twox_hash::XxHash3_128::oneshot_with_seed(seed, id.as_bytes()) as i128;
        last = Some((id, key));
        Some(key)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, StringViewArray};

    use super::*;

    fn keys(args: ColumnarValue) -> Decimal128Array {
        let udf = user_key();
        let out = udf
            .inner()
            .invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
                args: vec![args],
                arg_fields: vec![Arc::new(arrow::datatypes::Field::new(
                    "id",
                    DataType::Utf8View,
                    true,
                ))],
                number_rows: 4,
                return_field: Arc::new(arrow::datatypes::Field::new("k", USER_KEY_TYPE, true)),
                config_options: Arc::new(Default::default()),
            })
            .unwrap();
        let array = out.to_array(1).unwrap();
        array
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap()
            .clone()
    }

    #[test]
    fn user_keys_are_equal_exactly_for_equal_ids() {
        let ids: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("a-user-id-longer-than-twelve-bytes"),
            Some("a-user-id-longer-than-twelve-bytez"),
            None,
            Some("a-user-id-longer-than-twelve-bytes"),
        ]));
        let k = keys(ColumnarValue::Array(ids));
        assert_eq!(k.len(), 4);
        assert_eq!(k.value(0), k.value(3));
        assert_ne!(k.value(0), k.value(1));
        assert!(k.is_null(2));
        // Text of any string type gets the same key; a scalar too.
        let plain = hash_ids(&(Arc::new(StringArray::from(vec!["u"])) as ArrayRef)).unwrap();
        let scalar = keys(ColumnarValue::Scalar(ScalarValue::Utf8View(Some(
            "u".into(),
        ))));
        assert_eq!(plain.value(0), scalar.value(0));
    }

    #[test]
    fn view_keys_equal_keys_of_the_same_text() {
        let long = "a-user-id-longer-than-twelve-bytes";
        let ids = [
            Some(long),
            Some(long),
            Some("short"),
            None,
            Some("short"),
            Some(long),
            Some("a-user-id-longer-than-twelve-bytez"),
            None,
            None,
            Some("a-user-id-longer-than-twelve-bytez"),
            // Short ids of one length side by side, then the longest short length.
            Some("user-11"),
            Some("user-12"),
            Some("user-12"),
            Some("user-11"),
            Some("twelve bytes"),
            Some("twelve bytez"),
            Some("twelve bytez"),
            Some(long),
        ];
        let expected = keys_of(ids.iter().copied());
        // Each value its own view, and then equal values sharing views (as a dictionary
        // page decodes them).
        let separate = StringViewArray::from(ids.to_vec());
        let mut shared = arrow::array::StringViewBuilder::new().with_deduplicate_strings();
        ids.iter().for_each(|id| shared.append_option(*id));
        for array in [separate, shared.finish()] {
            let got = view_keys(&array);
            assert_eq!(got.nulls(), expected.nulls());
            for i in 0..ids.len() {
                if expected.is_valid(i) {
                    assert_eq!(got.value(i), expected.value(i), "row {i}");
                }
            }
        }
    }

    #[test]
    fn runs_of_one_id_reuse_its_key_and_a_new_id_gets_its_own() {
        let ids = ["b", "b", "b", "a", "a", "b", "c", "c"];
        let runs = keys_of(ids.iter().map(|s| Some(*s)));
        let one_by_one: Vec<i128> = ids
            .iter()
            .map(|id| keys_of(std::iter::once(Some(*id))).value(0))
            .collect();
        assert_eq!(runs.values().to_vec(), one_by_one);
        assert_ne!(runs.value(2), runs.value(3));
        assert_ne!(runs.value(5), runs.value(6));
        // A NULL between two rows of one id keeps both their keys.
        let gap = keys_of([Some("a"), None, Some("a")].into_iter());
        assert_eq!(gap.value(0), gap.value(2));
        assert!(gap.is_null(1));
    }
}
