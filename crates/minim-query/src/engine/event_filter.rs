//! A physical optimizer rule: a filter's `event = 'x'` and `event IN ('x', ...)` become
//! `minim_event_in(event, 'x', ...)`, which answers a batch whose rows are all one event
//! with one value. Per-user aggregations (`per_user.rs`) evaluate their arguments (a
//! funnel's step conditions) the same way.
//!
//! Segments are sorted by event first, and `event` is read as a dictionary, so almost
//! every batch a scan yields holds one event: all its keys are equal. Arrow's comparison
//! expands the dictionary's answers through the keys row by row, and the filter then
//! copies every column of the rows that pass, even when all of them do. This function
//! answers the dictionary's values once, checks in one vectorized pass that the keys
//! are all equal, and returns a constant: a batch of the asked event passes whole (the
//! filter slices it, copying nothing) and any other is dropped whole. A batch of mixed
//! events is answered row by row through the keys.
//!
//! The rule runs after DataFusion pushed the filter into the Parquet scan, so the scan
//! still prunes row groups and pages with the original comparison; only the filter's
//! own evaluation changes, and the rows that pass are the same. Never registered: SQL
//! cannot call the function.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Field, Int32Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use minim_store::segment::{COL_EVENT, event_type};

const NAME: &str = "minim_event_in";

/// The rule's name, as DataFusion lists it.
pub const EVENT_FILTER_RULE: &str = "minim_event_filter";

#[derive(Debug)]
pub(crate) struct EventFilterRule;

impl PhysicalOptimizerRule for EventFilterRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config = Arc::new(config.clone());
        super::rewrite_plan(plan, |node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(None);
            };
            let schema = filter.input().schema();
            let predicate = with_event_in(Arc::clone(filter.predicate()), &schema, &config)?;
            if Arc::ptr_eq(&predicate, filter.predicate()) {
                return Ok(None);
            }
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Some(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        EVENT_FILTER_RULE
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with every comparison of `event` with constants (see [`event_in`]) as
/// `minim_event_in`; `expr` itself (the same `Arc`) when it has none. Also used for the
/// arguments of per-user aggregations (a funnel's step conditions, `per_user.rs`).
pub(crate) fn with_event_in(
    expr: Arc<dyn PhysicalExpr>,
    schema: &arrow::datatypes::Schema,
    config: &Arc<ConfigOptions>,
) -> Result<Arc<dyn PhysicalExpr>> {
    Ok(expr
        .transform_up(|e| {
            Ok(match event_in(&e, schema, config)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(e),
            })
        })?
        .data)
}

/// `expr` as `minim_event_in`, if it compares the dictionary `event` column with one or
/// more text constants (`=` either way round, or a non-negated `IN` list).
fn event_in(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &arrow::datatypes::Schema,
    config: &Arc<ConfigOptions>,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let is_event = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>().is_some_and(|c| {
            c.name() == COL_EVENT
                && schema
                    .fields()
                    .get(c.index())
                    .is_some_and(|f| f.name() == COL_EVENT && f.data_type() == &event_type())
        })
    };
    let (column, names) = if let Some(b) = expr.downcast_ref::<BinaryExpr>() {
        if *b.op() != Operator::Eq {
            return Ok(None);
        }
        let (column, value) = if is_event(b.left()) {
            (b.left(), b.right())
        } else if is_event(b.right()) {
            (b.right(), b.left())
        } else {
            return Ok(None);
        };
        let Some(name) = text(value) else {
            return Ok(None);
        };
        (column, vec![name])
    } else if let Some(list) = expr.downcast_ref::<InListExpr>() {
        if list.negated() || !is_event(list.expr()) {
            return Ok(None);
        }
        let Some(names) = list.list().iter().map(text).collect::<Option<Vec<_>>>() else {
            return Ok(None);
        };
        (list.expr(), names)
    } else {
        return Ok(None);
    };
    let mut args = vec![Arc::clone(column)];
    args.extend(
        names
            .into_iter()
            .map(|n| Arc::new(Literal::new(ScalarValue::Utf8(Some(n)))) as Arc<dyn PhysicalExpr>),
    );
    let nullable = schema.field_with_name(COL_EVENT)?.is_nullable();
    Ok(Some(Arc::new(ScalarFunctionExpr::new(
        NAME,
        Arc::new(ScalarUDF::new_from_impl(EventIn::new())),
        args,
        Arc::new(Field::new(NAME, DataType::Boolean, nullable)),
        Arc::clone(config),
    ))))
}

/// The text of a constant (plain or dictionary-typed), if `e` is one and not NULL.
fn text(e: &Arc<dyn PhysicalExpr>) -> Option<String> {
    let mut value = e.downcast_ref::<Literal>()?.value();
    if let ScalarValue::Dictionary(_, inner) = value {
        value = inner;
    }
    match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// `minim_event_in(event, name, ...)`: whether each row's event is one of the names.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EventIn {
    signature: Signature,
}

impl EventIn {
    fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for EventIn {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let internal = |what: &str| DataFusionError::Internal(format!("{NAME} {what}"));
        let Some((events, names)) = args.args.split_first() else {
            return Err(internal("takes the event column"));
        };
        let names: Vec<&str> = names
            .iter()
            .map(|n| match n {
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => Ok(s.as_str()),
                _ => Err(internal("takes constant names")),
            })
            .collect::<Result<_>>()?;
        let events = events.to_array(args.number_rows)?;
        let dict = events
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| internal("takes a dictionary column"))?;
        let values = dict
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| internal("takes a dictionary of text"))?;
        matches(dict.keys(), values, &names)
    }
}

/// Whether each key's value is one of `names`, NULL where the key or its value is NULL
/// (as `=` and `IN` answer): a constant when no row is NULL and all answer the same.
fn matches(
    keys: &arrow::array::Int32Array,
    values: &arrow::array::StringArray,
    names: &[&str],
) -> Result<ColumnarValue> {
    let hits: Vec<bool> = (0..values.len())
        .map(|i| values.is_valid(i) && names.contains(&values.value(i)))
        .collect();
    let k = keys.values();
    let hit = |key: i32| {
        usize::try_from(key)
            .ok()
            .and_then(|i| hits.get(i))
            .copied()
            .unwrap_or(false)
    };
    if keys.null_count() == 0 && values.null_count() == 0 {
        let constant = |b: bool| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(b))));
        if !hits.contains(&true) {
            return constant(false);
        }
        if !hits.contains(&false) {
            return constant(true);
        }
        // One pass of XORs and ORs (vectorized): zero exactly when all keys are equal.
        if let Some(&head) = k.first()
            && k.iter().fold(0, |acc, &x| acc | (x ^ head)) == 0
        {
            return constant(hit(head));
        }
        let bits = BooleanBuffer::collect_bool(k.len(), |i| hit(k[i]));
        return Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            bits, None,
        ))));
    }
    let bits = BooleanBuffer::collect_bool(k.len(), |i| hit(k[i]));
    let valid = BooleanBuffer::collect_bool(k.len(), |i| {
        keys.is_valid(i) && usize::try_from(k[i]).is_ok_and(|v| values.is_valid(v))
    });
    Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
        bits,
        Some(valid.into()),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use proptest::prelude::*;

    fn answer(keys: &Int32Array, values: &StringArray, names: &[&str]) -> Vec<Option<bool>> {
        match matches(keys, values, names).unwrap() {
            ColumnarValue::Scalar(ScalarValue::Boolean(b)) => vec![b; keys.len()],
            ColumnarValue::Array(a) => a.as_boolean().iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    /// What SQL's `event IN (names)` answers row by row: NULL for a NULL key or value.
    fn row_by_row(keys: &Int32Array, values: &StringArray, names: &[&str]) -> Vec<Option<bool>> {
        keys.iter()
            .map(|k| {
                let k = usize::try_from(k?).unwrap();
                values.is_valid(k).then(|| names.contains(&values.value(k)))
            })
            .collect()
    }

    #[test]
    fn one_event_batches_answer_with_a_constant() {
        let values = StringArray::from(vec!["$pageview", "signup", "purchase"]);
        let all_views = Int32Array::from(vec![0; 100]);
        assert!(matches!(
            matches(&all_views, &values, &["$pageview"]).unwrap(),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
        ));
        assert!(matches!(
            matches(&all_views, &values, &["signup", "purchase"]).unwrap(),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)))
        ));
        // No value matches / every value matches: a constant whatever the keys.
        let mixed = Int32Array::from(vec![0, 1, 2, 1]);
        assert!(matches!(
            matches(&mixed, &values, &["absent"]).unwrap(),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)))
        ));
        assert!(matches!(
            matches(&mixed, &values, &["$pageview", "signup", "purchase"]).unwrap(),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
        ));
        assert_eq!(
            answer(&mixed, &values, &["signup"]),
            vec![Some(false), Some(true), Some(false), Some(true)]
        );
        // A NULL key is NULL (a filter drops it), never a match.
        let with_null = Int32Array::from(vec![Some(0), None, Some(0)]);
        assert_eq!(
            answer(&with_null, &values, &["$pageview"]),
            vec![Some(true), None, Some(true)]
        );
        assert_eq!(
            answer(&Int32Array::from(Vec::<i32>::new()), &values, &["x"]),
            vec![]
        );
    }

    proptest! {
        #[test]
        fn answers_as_row_by_row_comparison(
            keys in proptest::collection::vec(proptest::option::weighted(0.95, 0..4i32), 0..200),
            one_key in any::<bool>(),
            null_value in any::<bool>(),
            names in proptest::collection::vec(
                prop_oneof![Just("a"), Just("b"), Just("c"), Just("zz")],
                1..3,
            ),
        ) {
            let values = StringArray::from(vec![
                Some("a"),
                Some("b"),
                (!null_value).then_some("x"),
                Some("c"),
            ]);
            // Often one key throughout, as in event-first segments.
            let keys: Int32Array = if one_key {
                let head = keys.first().copied().flatten();
                keys.iter().map(|_| head).collect()
            } else {
                keys.into_iter().collect()
            };
            prop_assert_eq!(answer(&keys, &values, &names), row_by_row(&keys, &values, &names));
        }
    }
}
