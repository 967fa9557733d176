//! Metadata of the privacy pipeline: per-project secrets, tracking plans and learned
//! names, the identity map, pipeline counters and the deletion log. Plain SQL over one
//! connection; `sqlite.rs` exposes these through [`crate::MetaStore`].

use minim_core::ProjectId;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{DeletionRecord, PlanSuggestion, Result};

/// Bytes of a generated project secret.
const SECRET_BYTES: usize = 32;

pub(crate) fn project_secret(
    conn: &Connection,
    project: &ProjectId,
    purpose: &str,
    now_ms: i64,
) -> Result<Vec<u8>> {
    let mut fresh = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut fresh);
    // Two processes may race: the first insert wins and both read it back.
    conn.execute(
        "INSERT OR IGNORE INTO project_secrets (project_id, purpose, secret, created_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![project.as_str(), purpose, fresh, now_ms],
    )?;
    Ok(conn.query_row(
        "SELECT secret FROM project_secrets WHERE project_id = ?1 AND purpose = ?2",
        params![project.as_str(), purpose],
        |r| r.get(0),
    )?)
}

pub(crate) fn tracking_plan(conn: &Connection, project: &ProjectId) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT plan_json FROM tracking_plans WHERE project_id = ?1",
            params![project.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn set_tracking_plan(
    conn: &Connection,
    project: &ProjectId,
    plan_json: &str,
    now_ms: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO tracking_plans (project_id, plan_json, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(project_id) DO UPDATE SET plan_json = excluded.plan_json,
             updated_at_ms = excluded.updated_at_ms",
        params![project.as_str(), plan_json, now_ms],
    )?;
    Ok(())
}

pub(crate) fn add_plan_suggestions(
    conn: &mut Connection,
    project: &ProjectId,
    items: &[PlanSuggestion],
) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO plan_suggestions
             (project_id, event, property, seen_type, first_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for s in items {
            st.execute(params![
                project.as_str(),
                s.event,
                s.property.as_deref().unwrap_or(""),
                s.seen_type,
                s.first_seen_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn plan_suggestions(
    conn: &Connection,
    project: &ProjectId,
) -> Result<Vec<PlanSuggestion>> {
    let mut st = conn.prepare(
        "SELECT event, property, seen_type, first_seen_ms FROM plan_suggestions
         WHERE project_id = ?1 ORDER BY event, property",
    )?;
    let rows = st.query_map(params![project.as_str()], |r| {
        let property: String = r.get(1)?;
        Ok(PlanSuggestion {
            event: r.get(0)?,
            property: (!property.is_empty()).then_some(property),
            seen_type: r.get(2)?,
            first_seen_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn clear_plan_suggestions(conn: &Connection, project: &ProjectId) -> Result<()> {
    conn.execute(
        "DELETE FROM plan_suggestions WHERE project_id = ?1",
        params![project.as_str()],
    )?;
    Ok(())
}

pub(crate) fn add_identities(
    conn: &mut Connection,
    project: &ProjectId,
    items: &[(String, String)],
    now_ms: i64,
) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO identities (project_id, pseudonym, distinct_id, first_seen_ms)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (pseudonym, original) in items {
            st.execute(params![project.as_str(), pseudonym, original, now_ms])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn identity(
    conn: &Connection,
    project: &ProjectId,
    pseudonym: &str,
) -> Result<Option<(String, i64)>> {
    Ok(conn
        .query_row(
            "SELECT distinct_id, first_seen_ms FROM identities WHERE project_id = ?1 AND pseudonym = ?2",
            params![project.as_str(), pseudonym],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub(crate) fn delete_identity(
    conn: &Connection,
    project: &ProjectId,
    pseudonym: &str,
) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM identities WHERE project_id = ?1 AND pseudonym = ?2",
        params![project.as_str(), pseudonym],
    )? > 0)
}

pub(crate) fn add_privacy_counters(
    conn: &mut Connection,
    project: &ProjectId,
    deltas: &[(String, u64)],
) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO privacy_counters (project_id, counter, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(project_id, counter) DO UPDATE SET value = value + excluded.value",
        )?;
        for (name, v) in deltas {
            st.execute(params![
                project.as_str(),
                name,
                i64::try_from(*v).unwrap_or(i64::MAX)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn privacy_counters(
    conn: &Connection,
    project: &ProjectId,
) -> Result<Vec<(String, u64)>> {
    let mut st = conn.prepare(
        "SELECT counter, value FROM privacy_counters WHERE project_id = ?1 ORDER BY counter",
    )?;
    let rows = st.query_map(params![project.as_str()], |r| {
        let v: i64 = r.get(1)?;
        Ok((r.get(0)?, u64::try_from(v).unwrap_or(0)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn record_deletion(
    conn: &Connection,
    project: &ProjectId,
    kind: &str,
    report_json: &str,
    now_ms: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO deletions (project_id, kind, at_ms, report_json) VALUES (?1, ?2, ?3, ?4)",
        params![project.as_str(), kind, now_ms, report_json],
    )?;
    Ok(())
}

pub(crate) fn deletions(
    conn: &Connection,
    project: &ProjectId,
    limit: usize,
) -> Result<Vec<DeletionRecord>> {
    let mut st = conn.prepare(
        "SELECT id, kind, at_ms, report_json FROM deletions WHERE project_id = ?1
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(
        params![project.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(DeletionRecord {
                id: r.get(0)?,
                kind: r.get(1)?,
                at_ms: r.get(2)?,
                report_json: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
