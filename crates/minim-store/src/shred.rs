//! Shredded property columns: a segment may carry, beside the `properties` JSON text,
//! one column per frequent top-level property holding that property's string form
//! (`minim_core::props::RawLookup::string`, NULL where it is not set), so a query that
//! breaks down or filters by it reads one dictionary-encoded column instead of scanning
//! every event's JSON.
//!
//! Invariants:
//! - A shredded column is *derived*: `properties` stays complete, and for every row the
//!   column equals the string form computed from `properties`. Dropping or adding shredded
//!   columns never changes an answer, only its cost.
//! - Column `prop:<name>` holds property `<name>`; no base column starts with `prop:`.
//! - Which properties a segment shreds is chosen when it is written (flush: the most
//!   frequent ones; compaction: those its inputs shredded) and recorded in the manifest.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use minim_core::props::{self, MultiLookup};

use crate::segment::{COL_PROPERTIES, conform, schema};

/// Prefix of shredded property column names.
pub const PROP_COLUMN_PREFIX: &str = "prop:";
/// At most this many properties are shredded per segment.
pub const MAX_SHREDDED: usize = 24;
/// Rows a flush samples (evenly) to choose what to shred: the choice only sets costs.
pub const CHOOSE_SAMPLE_ROWS: usize = 16_384;
/// A property is shredded when set in at least 1 in this many of a segment's rows.
const MIN_SHARE_DENOMINATOR: usize = 20;

/// The column name of shredded property `name`.
pub fn prop_column(name: &str) -> String {
    format!("{PROP_COLUMN_PREFIX}{name}")
}

/// The properties worth shredding in a segment with these `properties` texts: those set
/// in at least 5% of rows, the [`MAX_SHREDDED`] most frequent, sorted by name.
pub fn choose<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut counts: HashMap<std::borrow::Cow<'a, str>, usize> = HashMap::new();
    let mut rows = 0usize;
    for text in texts {
        rows += 1;
        for name in props::set_names(text) {
            *counts.entry(name).or_default() += 1;
        }
    }
    let threshold = rows.div_ceil(MIN_SHARE_DENOMINATOR).max(1);
    rank(
        counts
            .into_iter()
            .filter(|(_, n)| *n >= threshold)
            .map(|(k, n)| (k.into_owned(), n)),
    )
}

/// The properties a segment merged from inputs shreds: those of its inputs, weighted by
/// the rows of the inputs that shredded them, the [`MAX_SHREDDED`] heaviest.
pub fn merge<'a>(inputs: impl IntoIterator<Item = (&'a [String], u64)>) -> Vec<String> {
    let mut weights: HashMap<&'a str, usize> = HashMap::new();
    for (names, rows) in inputs {
        for name in names {
            *weights.entry(name.as_str()).or_default() += rows as usize;
        }
    }
    rank(weights.into_iter().map(|(k, n)| (k.to_owned(), n)))
}

fn rank(candidates: impl Iterator<Item = (String, usize)>) -> Vec<String> {
    let mut ranked: Vec<(String, usize)> = candidates.collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(MAX_SHREDDED);
    let mut names: Vec<String> = ranked.into_iter().map(|(k, _)| k).collect();
    names.sort();
    names
}

/// The segment schema with shredded columns for `names`.
pub fn schema_with(names: &[String]) -> SchemaRef {
    let base = schema();
    if names.is_empty() {
        return base;
    }
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        names
            .iter()
            .map(|n| Field::new(prop_column(n), DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// `batch` (base columns) with the shredded columns for `names` appended, computed from
/// its `properties` column.
pub fn with_columns(batch: &RecordBatch, names: &[String]) -> Result<RecordBatch, String> {
    let mut columns: Vec<ArrayRef> = conform(batch)?.columns().to_vec();
    let texts = batch
        .column_by_name(COL_PROPERTIES)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("column properties missing or mistyped")?;
    let lookup = MultiLookup::new(names);
    let mut builders: Vec<StringBuilder> = names
        .iter()
        .map(|_| StringBuilder::with_capacity(texts.len(), texts.len() * 8))
        .collect();
    for i in 0..texts.len() {
        if texts.is_null(i) {
            builders.iter_mut().for_each(StringBuilder::append_null);
            continue;
        }
        for (b, value) in builders.iter_mut().zip(lookup.strings(texts.value(i))) {
            b.append_option(value);
        }
    }
    columns.extend(
        builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    RecordBatch::try_new(schema_with(names), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::events_to_batch;
    use minim_core::Event;

    fn ev(props: &str) -> Event {
        Event {
            timestamp_ms: 1,
            event: "e".into(),
            distinct_id: "u".into(),
            insert_id: None,
            properties: props.into(),
            personal: None,
            received_at_ms: 1,
        }
    }

    #[test]
    fn choose_keeps_frequent_properties_by_name() {
        let mut texts = vec![r#"{"b":1,"a":"x","n":null}"#.to_owned(); 30];
        texts.push(r#"{"rare":1}"#.into());
        assert_eq!(choose(texts.iter().map(String::as_str)), vec!["a", "b"]);
        assert!(choose(std::iter::empty()).is_empty());
    }

    #[test]
    fn merge_keeps_the_heaviest() {
        let a = ["x".to_owned(), "y".to_owned()];
        let b = ["y".to_owned(), "z".to_owned()];
        assert_eq!(merge([(&a[..], 5), (&b[..], 7)]), vec!["x", "y", "z"]);
    }

    #[test]
    fn columns_hold_the_string_form() {
        let events = [
            ev(r#"{"c":"DE","n":1.50,"o":{"k":1}}"#),
            ev(r#"{"c":null}"#),
            ev(r#"{"c":"a\"b"}"#),
            ev("{}"),
        ];
        let batch = events_to_batch(&events).unwrap();
        let names = vec!["c".to_owned(), "n".to_owned(), "o".to_owned()];
        let out = with_columns(&batch, &names).unwrap();
        let col = |n: &str| -> Vec<Option<String>> {
            let a = out
                .column_by_name(&prop_column(n))
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            a.iter().map(|v| v.map(str::to_owned)).collect()
        };
        // Rows are in (event, distinct_id, timestamp) order, ties stable: input order.
        assert_eq!(
            col("c"),
            vec![Some("DE".into()), None, Some("a\"b".into()), None]
        );
        assert_eq!(col("n"), vec![Some("1.5".into()), None, None, None]);
        assert_eq!(col("o"), vec![Some(r#"{"k":1}"#.into()), None, None, None]);
    }
}
