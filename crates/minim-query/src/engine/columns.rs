//! Typed access to the columns of result batches, with errors instead of panics when a
//! plan's output is not what the caller built it to be.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};

/// Column `i` of `batch` cast to `to` (a no-op when it already has that type).
fn column_as(batch: &RecordBatch, i: usize, to: &DataType) -> Result<ArrayRef> {
    let array = batch
        .columns()
        .get(i)
        .ok_or_else(|| DataFusionError::Internal(format!("result has no column {i}")))?;
    if array.data_type() == to {
        Ok(array.clone())
    } else {
        Ok(cast(array, to)?)
    }
}

pub(crate) fn int64(batch: &RecordBatch, i: usize) -> Result<Int64Array> {
    Ok(column_as(batch, i, &DataType::Int64)?
        .as_primitive()
        .clone())
}

pub(crate) fn float64(batch: &RecordBatch, i: usize) -> Result<Float64Array> {
    Ok(column_as(batch, i, &DataType::Float64)?
        .as_primitive()
        .clone())
}

pub(crate) fn utf8(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    Ok(column_as(batch, i, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

pub(crate) fn boolean(batch: &RecordBatch, i: usize) -> Result<arrow::array::BooleanArray> {
    Ok(column_as(batch, i, &DataType::Boolean)?
        .as_boolean()
        .clone())
}

/// Field `field` of the struct column `i` (as an aggregate returns it), as `A`.
fn struct_field<A: Array + Clone + 'static>(
    batch: &RecordBatch,
    i: usize,
    field: &str,
    kind: &str,
) -> Result<A> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_struct_opt())
        .and_then(|s| s.column_by_name(field))
        .and_then(|c| c.as_any().downcast_ref::<A>())
        .cloned()
        .ok_or_else(|| {
            DataFusionError::Internal(format!("result column {i} has no {kind} field {field}"))
        })
}

/// Binary field `field` of the struct column `i` (as an aggregate returns it).
pub(crate) fn struct_binary(batch: &RecordBatch, i: usize, field: &str) -> Result<BinaryArray> {
    struct_field(batch, i, field, "binary")
}

/// List field `field` of the struct column `i` (as an aggregate returns it).
pub(crate) fn struct_list(
    batch: &RecordBatch,
    i: usize,
    field: &str,
) -> Result<arrow::array::ListArray> {
    struct_field(batch, i, field, "list")
}

/// The BIGINT items of list `i` of `list`.
pub(crate) fn list_i64(list: &arrow::array::ListArray, i: usize) -> Result<Int64Array> {
    list.value(i)
        .as_primitive_opt()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("list items are not BIGINT".into()))
}

/// The value at `i`, `None` when NULL.
pub(crate) fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_owned())
}

pub(crate) fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

pub(crate) fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    a.is_valid(i).then(|| a.value(i))
}
