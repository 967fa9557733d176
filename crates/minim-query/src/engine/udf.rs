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
