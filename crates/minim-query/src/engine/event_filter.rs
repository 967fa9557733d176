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
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    ColumnarValue, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;
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
            // Columns of a hash partitioning would not survive a projection unchanged.
            let hashed = matches!(filter.input().output_partitioning(), Partitioning::Hash(..));
            if filter.fetch().is_none() && (filter.projection().is_none() || !hashed) {
                return Ok(Some(Arc::new(BatchFilterExec::new(
                    Arc::clone(filter.input()),
                    predicate,
                    filter.projection().as_deref().map(<[usize]>::to_vec),
                )?) as Arc<dyn ExecutionPlan>));
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

/// A filter that passes each batch's rows on as they come: a batch that passes whole
/// is the input batch itself, one that passes in part a filtered copy, and an empty
/// result nothing.
///
/// DataFusion's `FilterExec` also coalesces its output, and once one small batch is
/// buffered (the rows of a rare event, the end of an event's rows in a segment) it
/// merges every following batch with the remainder, copying every column of every row
/// (string data included) for the rest of the stream: ~8% of a funnel's CPU with
/// event-first segments. Downstream operators here take batches of any size.
#[derive(Debug)]
pub(crate) struct BatchFilterExec {
    input: Arc<dyn ExecutionPlan>,
    predicate: Arc<dyn PhysicalExpr>,
    /// The input columns passed on (all of them when `None`), as `FilterExec` projects.
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl BatchFilterExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        predicate: Arc<dyn PhysicalExpr>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        // A subset of the input's rows in the input's order and partitions: what held of
        // the input (orderings, constants) holds of the output. Projected, only the
        // partition count is kept (the rule never projects hash-partitioned input).
        let properties = match &projection {
            None => Arc::clone(input.properties()),
            Some(columns) => {
                let schema = Arc::new(input.schema().project(columns)?);
                let partitions = input.output_partitioning().partition_count();
                Arc::new(PlanProperties::new(
                    EquivalenceProperties::new(schema),
                    Partitioning::UnknownPartitioning(partitions),
                    input.pipeline_behavior(),
                    input.boundedness(),
                ))
            }
        };
        Ok(Self {
            input,
            predicate,
            projection,
            properties,
        })
    }
}

impl DisplayAs for BatchFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}: {}", self.name(), self.predicate)?;
        if let Some(columns) = &self.projection {
            write!(f, ", projection={columns:?}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for BatchFilterExec {
    fn name(&self) -> &str {
        "BatchFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.predicate)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("BatchFilterExec has one input".into()))?;
        Ok(Arc::new(Self::new(
            input,
            Arc::clone(&self.predicate),
            self.projection.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let predicate = Arc::clone(&self.predicate);
        let projection = self.projection.clone();
        let out = input.filter_map(move |batch| {
            let kept = batch.and_then(|batch| {
                let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                let mask = mask.as_boolean_opt().ok_or_else(|| {
                    DataFusionError::Internal("a filter predicate is not BOOLEAN".into())
                })?;
                let kept = arrow::compute::filter_record_batch(&batch, mask)?;
                Ok(match &projection {
                    Some(columns) => kept.project(columns)?,
                    None => kept,
                })
            });
            std::future::ready(match kept {
                Ok(b) if b.num_rows() == 0 => None,
                other => Some(other),
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), out)))
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

    /// Batches that pass whole come out as they went in, partly passing ones filtered,
    /// empty results not at all; nothing is merged.
    #[test]
    fn batch_filter_passes_batches_as_they_come() {
        use arrow::array::{DictionaryArray, Int64Array, RecordBatch};
        use arrow::datatypes::Schema;
        let schema = Arc::new(Schema::new(vec![
            Field::new(COL_EVENT, event_type(), false),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = |events: &[&str], from: i64| {
            let events: DictionaryArray<Int32Type> = events.iter().copied().collect();
            let n = Int64Array::from_iter_values(from..from + events.len() as i64);
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(events), Arc::new(n)]).unwrap()
        };
        let batches = vec![
            batch(&["view"; 5], 0),
            batch(&["view", "buy", "view"], 5),
            batch(&["buy"; 4], 8),
            batch(&["view"; 2], 12),
        ];
        let source = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            std::slice::from_ref(&batches),
            Arc::clone(&schema),
            None,
        )
        .unwrap();
        let config = Arc::new(ConfigOptions::default());
        let compare: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new(COL_EVENT, 0)),
            Operator::Eq,
            Arc::new(Literal::new(ScalarValue::Utf8(Some("view".into())))),
        ));
        let predicate = with_event_in(compare, &schema, &config).unwrap();
        assert!(predicate.to_string().contains(NAME), "{predicate}");
        let exec = Arc::new(BatchFilterExec::new(source, predicate, None).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt
            .block_on(datafusion::physical_plan::collect(
                exec,
                Arc::new(TaskContext::default()),
            ))
            .unwrap();
        let numbers: Vec<Vec<i64>> = out
            .iter()
            .map(|b| {
                b.column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(numbers, vec![vec![0, 1, 2, 3, 4], vec![5, 7], vec![12, 13]]);
        // A batch that passes whole is the same memory, not a copy.
        let values = |b: &RecordBatch| {
            b.column(1)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .as_ptr()
        };
        assert_eq!(values(&out[0]), values(&batches[0]));
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
