//! `paths` on DataFusion: the range's events numbered per user in (timestamp, event)
//! order, each user's first start event found, and the `depth` events after (before) it
//! fetched by a join on the numbers; `reference::paths::PathTree` builds the tree.

use arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, min};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, SortExpr, cast, col, lit};
use datafusion::prelude::SessionContext;
use minim_store::segment::{COL_DISTINCT_ID, COL_EVENT, COL_TIMESTAMP};

use super::columns;
use super::filter::time_range;
use super::table::EVENTS_TABLE;
use crate::reference::paths::PathTree;
use crate::result::PathsResult;
use crate::spec::{Date, PathDirection, PathsSpec};

pub(crate) async fn run(ctx: &SessionContext, spec: &PathsSpec) -> Result<PathsResult> {
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let depth = i64::try_from(spec.depth()).unwrap_or(i64::MAX);
    let numbered = ctx
        .table(EVENTS_TABLE)
        .await?
        .filter(time_range(start, end))?
        .select(vec![
            col(COL_DISTINCT_ID),
            col(COL_EVENT),
            cast(
                row_number()
                    .partition_by(vec![col(COL_DISTINCT_ID)])
                    .order_by(vec![
                        SortExpr::new(col(COL_TIMESTAMP), true, false),
                        SortExpr::new(col(COL_EVENT), true, false),
                    ])
                    .build()?,
                DataType::Int64,
            )
            .alias("rn"),
        ])?;
    let firsts = numbered
        .clone()
        .filter(col(COL_EVENT).eq(lit(spec.start_event.as_str())))?
        .aggregate(
            vec![col(COL_DISTINCT_ID).alias("user")],
            vec![min(col("rn")).alias("rn0")],
        )?;
    let taking_part = firsts
        .clone()
        .aggregate(vec![], vec![count(lit(1)).alias("n")])?
        .collect()
        .await?;
    let mut users = 0u64;
    for b in &taking_part {
        let n = columns::int64(b, 0)?;
        users += (0..b.num_rows())
            .filter_map(|i| columns::opt_i64(&n, i))
            .map(|v| u64::try_from(v).unwrap_or(0))
            .sum::<u64>();
    }

    let pos = col("rn") - col("rn0");
    let (range, ascending) = match spec.direction {
        PathDirection::Next => (pos.clone().between(lit(1i64), lit(depth)), true),
        PathDirection::Previous => (pos.clone().between(lit(-depth), lit(-1i64)), false),
    };
    let steps = numbered
        .join(firsts, JoinType::Inner, &[COL_DISTINCT_ID], &["user"], None)?
        .filter(range)?
        .select(vec![col(COL_DISTINCT_ID), pos.alias("pos"), col(COL_EVENT)])?
        .sort(vec![
            SortExpr::new(col(COL_DISTINCT_ID), true, false),
            SortExpr::new(col("pos"), ascending, false),
        ])?
        .collect()
        .await?;

    let mut tree = PathTree::default();
    let mut with_steps = 0u64;
    let mut current: Option<String> = None;
    let mut path: Vec<String> = Vec::new();
    for b in &steps {
        let ids = columns::utf8(b, 0)?;
        let names = columns::utf8(b, 2)?;
        for i in 0..b.num_rows() {
            let id = columns::opt_str(&ids, i);
            if id != current {
                if current.is_some() {
                    tree.add(path.iter().map(String::as_str));
                    with_steps += 1;
                }
                path.clear();
                current = id;
            }
            path.push(columns::opt_str(&names, i).unwrap_or_default());
        }
    }
    if current.is_some() {
        tree.add(path.iter().map(String::as_str));
        with_steps += 1;
    }
    for _ in with_steps..users {
        tree.add(std::iter::empty());
    }
    Ok(tree.finish(spec))
}
