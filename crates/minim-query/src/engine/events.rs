//! `events` (the live view) on DataFusion: the matching events after the cursor in the
//! reference's order, fetched `limit + 1` at a time with a top-k sort, then paged by
//! `reference::events::paginate`.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMillisecondType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, SortExpr, col};
use datafusion::prelude::SessionContext;
use minim_core::Event;
use minim_store::segment::{
    COL_DISTINCT_ID, COL_EVENT, COL_INSERT_ID, COL_PROPERTIES, COL_RECEIVED_AT, COL_TIMESTAMP,
};

use super::columns;
use super::filter::{Exprs, event_is, ts_lit};
use super::table::EVENTS_TABLE;
use crate::reference::events::paginate;
use crate::result::EventsResult;
use crate::spec::{EventsCursor, EventsSpec};

pub(crate) async fn run(ctx: &SessionContext, spec: &EventsSpec) -> Result<EventsResult> {
    let exprs = Exprs::new(ctx)?;
    let (start, end) = spec.range_ms();
    let mut matching = exprs.filters(&spec.filters);
    if start > i64::MIN {
        matching = matching.and(col(COL_TIMESTAMP).gt_eq(ts_lit(start)));
    }
    if end < i64::MAX {
        matching = matching.and(col(COL_TIMESTAMP).lt(ts_lit(end)));
    }
    if let Some(name) = &spec.event {
        matching = matching.and(event_is(name));
    }
    let want = spec.limit().saturating_add(1);
    let cursor = spec.cursor.as_deref().and_then(EventsCursor::parse);

    let mut remaining = Vec::new();
    match cursor {
        None => fetch(ctx, matching, 0, want, &mut remaining).await?,
        Some(c) => {
            let at = matching
                .clone()
                .and(col(COL_TIMESTAMP).eq(ts_lit(c.timestamp_ms)));
            let skip = usize::try_from(c.skip).unwrap_or(usize::MAX);
            fetch(ctx, at, skip, want, &mut remaining).await?;
            if remaining.len() < want {
                let older = matching.and(col(COL_TIMESTAMP).lt(ts_lit(c.timestamp_ms)));
                let rest = want - remaining.len();
                fetch(ctx, older, 0, rest, &mut remaining).await?;
            }
        }
    }
    let refs: Vec<&Event> = remaining.iter().collect();
    Ok(paginate(spec, &refs))
}

/// Every stored event of one user (as stored: the pseudonym), newest first, at most
/// `max`: the data subject export.
pub(crate) async fn of_user(
    ctx: &SessionContext,
    distinct_id: &str,
    max: usize,
) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    let predicate = col(COL_DISTINCT_ID).eq(datafusion::logical_expr::lit(distinct_id));
    fetch(ctx, predicate, 0, max, &mut out).await?;
    Ok(out)
}

/// Appends the events matching `predicate` in page order, skipping `skip`, at most `fetch`.
async fn fetch(
    ctx: &SessionContext,
    predicate: Expr,
    skip: usize,
    fetch: usize,
    out: &mut Vec<Event>,
) -> Result<()> {
    let desc = |c: &str| SortExpr::new(col(c), false, false);
    let batches = ctx
        .table(EVENTS_TABLE)
        .await?
        .filter(predicate)?
        .select(vec![
            col(COL_TIMESTAMP),
            col(COL_EVENT),
            col(COL_DISTINCT_ID),
            col(COL_INSERT_ID),
            col(COL_PROPERTIES),
            col(COL_RECEIVED_AT),
        ])?
        .sort(vec![
            desc(COL_TIMESTAMP),
            desc(COL_RECEIVED_AT),
            desc(COL_DISTINCT_ID),
            desc(COL_EVENT),
            desc(COL_INSERT_ID),
            desc(COL_PROPERTIES),
        ])?
        .limit(skip, Some(fetch))?
        .collect()
        .await?;
    for b in &batches {
        read_events(b, out)?;
    }
    Ok(())
}

fn read_events(b: &RecordBatch, out: &mut Vec<Event>) -> Result<()> {
    let ts = |i: usize| {
        b.column(i)
            .as_primitive_opt::<TimestampMillisecondType>()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("timestamps must be milliseconds".into()))
    };
    let (timestamps, received) = (ts(0)?, ts(5)?);
    let (names, ids, inserts, props) = (
        columns::utf8(b, 1)?,
        columns::utf8(b, 2)?,
        columns::utf8(b, 3)?,
        columns::utf8(b, 4)?,
    );
    for i in 0..b.num_rows() {
        out.push(Event {
            timestamp_ms: timestamps.value(i),
            event: names.value(i).to_owned(),
            distinct_id: ids.value(i).to_owned(),
            insert_id: columns::opt_str(&inserts, i),
            properties: props.value(i).to_owned(),
            personal: None,
            received_at_ms: received.value(i),
        });
    }
    Ok(())
}
