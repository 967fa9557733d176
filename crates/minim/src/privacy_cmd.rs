//! `minim plan ...`, `minim subject ...` and `minim retention run`: the privacy admin
//! commands. Plans only touch the metadata database (safe while a server runs; it picks
//! changes up within seconds). Subject requests and retention need the event store, so
//! they run offline and refuse clearly while a server holds the data directory (use the
//! HTTP API then).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use minim_core::ProjectId;
use minim_meta::MetaStore;
use minim_privacy::plan::TrackingPlan;
use minim_server::privacy as p;

use crate::config::Config;
use crate::{now_ms, open_meta, print, runtime};

#[derive(Subcommand, Debug)]
pub enum PlanCmd {
    /// Print (or write) a project's tracking plan as YAML or JSON.
    Export {
        #[arg(long)]
        project: String,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
        /// File to write (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replace a project's tracking plan from a YAML or JSON file.
    Import {
        #[arg(long)]
        project: String,
        file: PathBuf,
    },
    /// List names seen in `learn` mode that the plan does not declare.
    Suggestions {
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubjectCmd {
    /// Export everything stored about one user as a JSON file.
    Export {
        #[arg(long)]
        project: String,
        #[arg(long)]
        distinct_id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Erase every event and identity-map entry of one user.
    Erase {
        #[arg(long)]
        project: String,
        #[arg(long)]
        distinct_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionCmd {
    /// Apply every project's retention now.
    Run,
}

fn project_id(meta: &dyn MetaStore, s: String) -> anyhow::Result<ProjectId> {
    let id = ProjectId::new(s)?;
    if meta.project(&id)?.is_none() {
        bail!("project {id} does not exist");
    }
    Ok(id)
}

pub fn plan(cfg: &Config, cmd: PlanCmd, json: bool) -> anyhow::Result<()> {
    let meta = open_meta(cfg)?;
    match cmd {
        PlanCmd::Export {
            project,
            format,
            out,
        } => {
            let id = project_id(&meta, project)?;
            let plan = p::load_plan(&meta, &id)?;
            let text = match format.as_str() {
                "yaml" => plan.to_yaml(),
                "json" => plan.to_json() + "\n",
                other => bail!("--format must be yaml or json, not {other:?}"),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    print(
                        json,
                        serde_json::json!({"project_id": id.as_str(), "file": path}),
                        format!("wrote the plan of {id} to {}", path.display()),
                    )
                }
                None if json => print(true, serde_json::to_value(&plan)?, String::new()),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        PlanCmd::Import { project, file } => {
            let id = project_id(&meta, project)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let is_json =
                file.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
            let plan = if is_json {
                TrackingPlan::from_json(&text)
            } else {
                TrackingPlan::from_yaml(&text)
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            meta.set_tracking_plan(&id, &plan.to_json(), now_ms())?;
            print(
                json,
                serde_json::json!({"project_id": id.as_str(), "mode": plan.mode,
                    "events": plan.events.len(), "properties": plan.properties.len()}),
                format!(
                    "imported the plan of {id}: mode {:?}, {} events, {} global properties",
                    plan.mode,
                    plan.events.len(),
                    plan.properties.len()
                ),
            )
        }
        PlanCmd::Suggestions { project } => {
            let id = project_id(&meta, project)?;
            let items = meta.plan_suggestions(&id)?;
            let human = items
                .iter()
                .map(|s| {
                    format!(
                        "{}\t{}\t{}",
                        s.event,
                        s.property.as_deref().unwrap_or("-"),
                        s.seen_type
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<_> = items
                .iter()
                .map(|s| serde_json::json!({"event": s.event, "property": s.property, "seen_type": s.seen_type}))
                .collect();
            print(json, serde_json::json!({ "suggestions": list }), human)
        }
    }
}

/// Opens the event store for an offline command, with a clear error if a server has it.
fn open_store(cfg: &Config) -> anyhow::Result<minim_store::Store> {
    minim_store::Store::open(cfg.store_config()?).map_err(|e| match e {
        minim_store::StoreError::Locked(_) => anyhow::anyhow!(
            "the data directory is in use by a running server; use the HTTP API \
             (POST /api/v1/projects/ID/subjects/...) or stop the server"
        ),
        other => anyhow::anyhow!("opening the event store: {other}"),
    })
}

pub fn subject(cfg: &Config, cmd: SubjectCmd, json: bool) -> anyhow::Result<()> {
    let meta: Arc<dyn MetaStore> = Arc::new(open_meta(cfg)?);
    match cmd {
        SubjectCmd::Erase {
            project,
            distinct_id,
        } => {
            let id = project_id(meta.as_ref(), project)?;
            let store = open_store(cfg)?;
            let summary = p::erase_subject(&store, meta.as_ref(), &id, &distinct_id, now_ms())?;
            store.shutdown()?;
            print(
                json,
                serde_json::to_value(&summary)?,
                format!(
                    "erased {} events of the user from {id} ({} segments rewritten)",
                    summary.events_erased, summary.segments_rewritten
                ),
            )
        }
        SubjectCmd::Export {
            project,
            distinct_id,
            out,
        } => {
            let id = project_id(meta.as_ref(), project)?;
            let store = open_store(cfg)?;
            let engine = minim_query::engine::QueryEngine::new(cfg.query.clone())
                .context("starting the query engine")?;
            let export = runtime()?.block_on(p::export_subject(
                &store,
                meta.clone(),
                &engine,
                &id,
                &distinct_id,
                now_ms(),
            ))?;
            let n = export.events.len();
            let text = serde_json::to_string_pretty(&export)?;
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            store.shutdown()?;
            print(
                json,
                serde_json::json!({"project_id": id.as_str(), "events": n, "file": out}),
                format!("wrote {n} events of the user to {}", out.display()),
            )
        }
    }
}

pub fn retention(cfg: &Config, cmd: RetentionCmd, json: bool) -> anyhow::Result<()> {
    let RetentionCmd::Run = cmd;
    let meta = open_meta(cfg)?;
    let store = open_store(cfg)?;
    let reports = p::run_retention(&store, &meta, now_ms())?;
    store.shutdown()?;
    let human = reports
        .iter()
        .map(|(id, r)| {
            format!(
                "{id}: {} events deleted, {} properties removed, {} partitions dropped",
                r.events_deleted, r.properties_removed, r.partitions_dropped
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let list: Vec<_> = reports
        .iter()
        .map(|(id, r)| serde_json::json!({"project_id": id.as_str(), "report": r}))
        .collect();
    print(json, serde_json::json!({ "projects": list }), human)
}
