//! Reading records back, newest first, through a [`Filter`].

use std::fs::File;
use std::path::Path;

use crate::error::{AuditError, IoContext};
use crate::event::{AuditRecord, Decision};
use crate::fsutil::{RevItem, RevLines, complete_len};
use crate::line::parse_record_line;

/// Most records one query returns.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// Which records a query wants; every set field must match (AND). Times are
/// `from_ms <= time_ms < to_ms`; `before_seq` is a cursor (`seq < before_seq`), so the
/// next page starts before the last seq of the previous one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub decision: Option<Decision>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before_seq: Option<u64>,
}

impl Filter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let e = &r.event;
        self.principal.as_deref().is_none_or(|p| e.principal == p)
            && self.action.as_deref().is_none_or(|a| e.action == a)
            && self.resource.as_deref().is_none_or(|x| e.resource == x)
            && self.decision.is_none_or(|d| e.decision == d)
            && self.from_ms.is_none_or(|t| e.time_ms >= t)
            && self.to_ms.is_none_or(|t| e.time_ms < t)
            && self.before_seq.is_none_or(|s| r.seq < s)
    }
}

/// Scans `file` from the end and returns up to `limit` (capped at [`MAX_QUERY_LIMIT`])
/// matching records, newest first. Lines that are not valid records are skipped (and
/// counted in one WARN); `verify` is the place that judges them. An unfinished last
/// line (a write in progress in another process) is not read.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<AuditRecord>, AuditError> {
    let limit = limit.min(MAX_QUERY_LIMIT);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let ctx = || format!("reading {}", path.display());
    let len = file.metadata().io_context(ctx)?.len();
    let Some(end) = complete_len(file, len).io_context(ctx)? else {
        return Ok(out);
    };
    let needles = needles(filter);
    let mut lines = RevLines::new(file, end);
    let mut skipped = 0u64;
    while let Some(item) = lines.next_item().io_context(ctx)? {
        let RevItem::Line(bytes) = item else {
            skipped += 1;
            continue;
        };
        if !needles.iter().all(|n| n.find(&bytes).is_some()) {
            continue;
        }
        let Ok(parsed) = parse_record_line(&bytes) else {
            skipped += 1;
            continue;
        };
        if filter.matches(&parsed.record) {
            out.push(parsed.record);
            if out.len() >= limit {
                break;
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped,
            "audit query skipped lines that are not valid records; run `minim audit verify`");
    }
    Ok(out)
}

/// Byte strings that a matching line must contain, so that most lines are rejected
/// without parsing. Exact for canonical lines (the only ones `parse_record_line`
/// accepts): `"key":` can only occur as the key itself, since quotes inside values
/// are escaped.
fn needles(filter: &Filter) -> Vec<memchr::memmem::Finder<'static>> {
    let mut out = Vec::new();
    let mut add = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            let needle = format!("\"{key}\":{v}");
            out.push(memchr::memmem::Finder::new(needle.as_bytes()).into_owned());
        }
    };
    let json = |s: &Option<String>| s.as_ref().and_then(|s| serde_json::to_string(s).ok());
    add("principal", json(&filter.principal));
    add("action", json(&filter.action));
    add("resource", json(&filter.resource));
    add(
        "decision",
        filter.decision.and_then(|d| serde_json::to_string(&d).ok()),
    );
    out
}
