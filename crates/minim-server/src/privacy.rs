//! The privacy pipeline wired into the server: per-project rules (tracking plan and
//! pseudonymization secret, cached briefly), the client context of a request (IP from
//! the socket or a trusted proxy, user agent), counters flushed to the metadata store,
//! and the operations both the API and the CLI run: plan changes, data subject export
//! and erasure, retention runs. The client IP is read here and handed to the pipeline;
//! nothing in this file stores or logs it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use minim_core::{Event, ProjectId};
use minim_meta::{MetaError, MetaStore, PlanSuggestion};
use minim_privacy::pipeline::{ClientContext, Outcome, Pipeline, PrivacyConfig, ProjectContext};
use minim_privacy::plan::{CompiledPlan, TrackingPlan};
use minim_privacy::{PrivacyStats, Secret};
use minim_query::engine::QueryEngine;
use minim_store::{RetentionPolicy, RetentionReport, Store};
use serde::Serialize;

/// The `purpose` under which a project's pseudonymization secret is stored.
pub const PSEUDONYM_SECRET: &str = "pseudonym";
/// How long a project's plan and secret are cached (CLI plan changes apply within it).
const RULES_TTL: Duration = Duration::from_secs(5);

/// A project's rules for the pipeline.
pub struct ProjectRules {
    pub plan: CompiledPlan,
    pub secret: Secret,
}

/// Server-wide privacy state.
pub struct Privacy {
    pipeline: Pipeline,
    trusted_proxies: Vec<ipnet::IpNet>,
    rules: Mutex<HashMap<ProjectId, (Arc<ProjectRules>, Instant)>>,
    /// Counter deltas not yet in the metadata store.
    pending: Mutex<HashMap<ProjectId, PrivacyStats>>,
    bypass: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("stored tracking plan is invalid: {0}")]
    BadStoredPlan(String),
    #[error("stored secret is malformed")]
    BadSecret,
    #[error("could not encrypt the identity map: {0}")]
    Seal(String),
}

impl Privacy {
    pub fn new(cfg: &PrivacyConfig, now_ms: i64) -> Result<Self, String> {
        if cfg.benchmark_bypass {
            tracing::warn!(
                "privacy.benchmark_bypass is on: events are stored WITHOUT the privacy pipeline; benchmarks only"
            );
        }
        let geo = match &cfg.geoip_path {
            Some(path) => Some(
                minim_privacy::geo::Geo::open(path, cfg.geoip_level)
                    .map_err(|e| format!("privacy.geoip_path: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            pipeline: Pipeline::new(geo, now_ms),
            trusted_proxies: cfg.trusted_proxy_nets()?,
            rules: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            bypass: cfg.benchmark_bypass,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The client context of a request: the socket peer, or the right-most address of
    /// `X-Forwarded-For` that is not a trusted proxy when the peer is one.
    pub fn client_context(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> ClientContext {
        let mut ip = peer.map(|p| p.ip());
        if let Some(peer_ip) = ip
            && self.is_trusted(peer_ip)
        {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .collect::<Vec<_>>();
            if let Some(client) = forwarded.into_iter().rev().find(|a| !self.is_trusted(*a)) {
                ip = Some(client);
            }
        }
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        ClientContext { ip, user_agent }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The project's plan and secret (cached for a few seconds). Blocking.
    pub fn rules(
        &self,
        meta: &dyn MetaStore,
        project: &ProjectId,
        now_ms: i64,
    ) -> Result<Arc<ProjectRules>, PrivacyError> {
        if let Some((r, at)) = self.cache().get(project)
            && at.elapsed() < RULES_TTL
        {
            return Ok(r.clone());
        }
        let rules = Arc::new(load_rules(meta, project, now_ms)?);
        self.cache()
            .insert(project.clone(), (rules.clone(), Instant::now()));
        Ok(rules)
    }

    /// Forgets a project's cached rules (after the plan changed here).
    pub fn invalidate(&self, project: &ProjectId) {
        self.cache().remove(project);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, (Arc<ProjectRules>, Instant)>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the pipeline over a decoded batch and records what must be kept about it
    /// (counters now, learned names and identities in the metadata store). Blocking.
    pub fn process(
        &self,
        meta: &dyn MetaStore,
        encryption: Option<&minim_store::Encryption>,
        project: &ProjectId,
        client: &ClientContext,
        events: Vec<Event>,
        now_ms: i64,
    ) -> Result<Outcome, PrivacyError> {
        if self.bypass {
            return Ok(Outcome {
                indices: (0..events.len()).collect(),
                events,
                ..Outcome::default()
            });
        }
        let rules = self.rules(meta, project, now_ms)?;
        let ctx = ProjectContext {
            project,
            plan: &rules.plan,
            secret: &rules.secret,
        };
        let outcome = self.pipeline.process(&ctx, client, events, now_ms);
        if !outcome.suggestions.is_empty() {
            let items: Vec<PlanSuggestion> = outcome
                .suggestions
                .iter()
                .map(|s| PlanSuggestion {
                    event: s.event.clone(),
                    property: s.property.clone(),
                    seen_type: s.seen_type.to_owned(),
                    first_seen_ms: now_ms,
                })
                .collect();
            meta.add_plan_suggestions(project, &items)?;
        }
        if !outcome.identities.is_empty() {
            // Original ids are personal data: sealed under the project's personal key,
            // which reading events never loads.
            let items = match encryption {
                Some(enc) => outcome
                    .identities
                    .iter()
                    .map(|(pseudonym, original)| {
                        enc.seal_personal(project, pseudonym, original)
                            .map(|sealed| (pseudonym.clone(), sealed))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| PrivacyError::Seal(e.to_string()))?,
                None => outcome.identities.clone(),
            };
            meta.add_identities(project, &items, now_ms)?;
        }
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(project.clone())
            .or_default()
            .add(&outcome.stats);
        Ok(outcome)
    }

    /// Moves pending counters to the metadata store and the metrics. Blocking.
    pub fn flush_counters(&self, meta: &dyn MetaStore) -> Result<(), PrivacyError> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for (project, stats) in pending {
            let flat = stats.flatten();
            if flat.is_empty() {
                continue;
            }
            for (name, v) in &flat {
                ::metrics::counter!(crate::telemetry::PRIVACY_EVENTS, "project" => project.as_str().to_owned(), "counter" => name.clone())
                    .increment(*v);
            }
            if let Err(e) = meta.add_privacy_counters(&project, &flat) {
                // Put them back; the next flush retries.
                self.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(project)
                    .or_default()
                    .add(&stats);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Totals for a project: stored counters plus what is not flushed yet. Blocking.
    pub fn stats(
        &self,
        meta: &dyn MetaStore,
        project: &ProjectId,
    ) -> Result<PrivacyStats, PrivacyError> {
        let mut s = PrivacyStats::from_flat(meta.privacy_counters(project)?);
        if let Some(p) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(project)
        {
            s.add(p);
        }
        Ok(s)
    }
}

fn load_rules(
    meta: &dyn MetaStore,
    project: &ProjectId,
    now_ms: i64,
) -> Result<ProjectRules, PrivacyError> {
    let plan = load_plan(meta, project)?;
    let secret = meta.project_secret(project, PSEUDONYM_SECRET, now_ms)?;
    let secret = Secret::from_bytes(&secret).ok_or(PrivacyError::BadSecret)?;
    Ok(ProjectRules {
        plan: CompiledPlan::new(plan),
        secret,
    })
}

/// The project's plan, or the default (permissive) plan when none was set. Blocking.
pub fn load_plan(meta: &dyn MetaStore, project: &ProjectId) -> Result<TrackingPlan, PrivacyError> {
    match meta.tracking_plan(project)? {
        Some(text) => {
            TrackingPlan::from_json(&text).map_err(|e| PrivacyError::BadStoredPlan(e.to_string()))
        }
        None => Ok(TrackingPlan::default()),
    }
}

/// The pseudonym a `distinct_id` is stored under in `project`. Blocking.
pub fn pseudonym_of(
    meta: &dyn MetaStore,
    project: &ProjectId,
    distinct_id: &str,
    now_ms: i64,
) -> Result<String, PrivacyError> {
    let secret = meta.project_secret(project, PSEUDONYM_SECRET, now_ms)?;
    let secret = Secret::from_bytes(&secret).ok_or(PrivacyError::BadSecret)?;
    Ok(secret.pseudonym(distinct_id))
}

/// The store's retention policy for a plan. A property declared with retention on
/// several events keeps the shortest one.
pub fn retention_policy(plan: &TrackingPlan) -> RetentionPolicy {
    let mut policy = RetentionPolicy {
        default_days: Some(plan.retention_days),
        ..RetentionPolicy::default()
    };
    for (name, spec) in &plan.events {
        if let Some(d) = spec.retention_days {
            policy.events.insert(name.clone(), d);
        }
    }
    let props = plan
        .properties
        .iter()
        .chain(plan.events.values().flat_map(|e| e.properties.iter()));
    for (name, spec) in props {
        if let Some(d) = spec.retention_days {
            let e = policy.properties.entry(name.clone()).or_insert(d);
            *e = (*e).min(d);
        }
    }
    policy
}

/// What one erasure removed (never the id).
#[derive(Debug, Clone, Serialize)]
pub struct ErasureSummary {
    pub events_erased: u64,
    pub segments_rewritten: u64,
    pub segments_deleted: u64,
    pub identity_map_entries_erased: u64,
}

/// Erases every stored event and the identity-map entry of `distinct_id`, and logs the
/// erasure (counts only) in the deletion log. Blocking.
pub fn erase_subject(
    store: &Store,
    meta: &dyn MetaStore,
    project: &ProjectId,
    distinct_id: &str,
    now_ms: i64,
) -> Result<ErasureSummary, SubjectError> {
    let pseudonym = pseudonym_of(meta, project, distinct_id, now_ms)?;
    let report = store.erase_user(project, &pseudonym)?;
    let identity = u64::from(
        meta.delete_identity(project, &pseudonym)
            .map_err(PrivacyError::from)?,
    );
    let summary = ErasureSummary {
        events_erased: report.events_erased,
        segments_rewritten: report.segments_rewritten,
        segments_deleted: report.segments_deleted,
        identity_map_entries_erased: identity,
    };
    let json = serde_json::to_string(&summary).unwrap_or_default();
    meta.record_deletion(project, "erasure", &json, now_ms)
        .map_err(PrivacyError::from)?;
    tracing::info!(project = %project, events = summary.events_erased, "erased a data subject");
    Ok(summary)
}

/// Everything stored about one user.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectExport {
    pub project_id: String,
    pub distinct_id: String,
    /// What the events are stored under.
    pub pseudonym: String,
    /// When the identity map first saw this user, if the project keeps one.
    pub identity_map_first_seen: Option<String>,
    pub events: Vec<ExportedEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedEvent {
    pub event: String,
    pub timestamp: String,
    pub received_at: String,
    pub insert_id: Option<String>,
    pub properties: serde_json::Value,
}

/// Exports every stored event of `distinct_id`. Blocking on the engine's own runtime.
pub async fn export_subject(
    store: &Store,
    meta: Arc<dyn MetaStore>,
    engine: &QueryEngine,
    project: &ProjectId,
    distinct_id: &str,
    now_ms: i64,
) -> Result<SubjectExport, SubjectError> {
    let (pseudonym, identity) = {
        let meta = meta.clone();
        let project = project.clone();
        let id = distinct_id.to_owned();
        tokio::task::spawn_blocking(move || -> Result<_, PrivacyError> {
            let p = pseudonym_of(meta.as_ref(), &project, &id, now_ms)?;
            let identity = meta.identity(&project, &p)?;
            Ok((p, identity))
        })
        .await
        .map_err(|e| SubjectError::Internal(e.to_string()))??
    };
    let events = engine
        .user_events(store.snapshot(), project.clone(), pseudonym.clone())
        .await?;
    Ok(SubjectExport {
        project_id: project.as_str().to_owned(),
        distinct_id: distinct_id.to_owned(),
        pseudonym,
        identity_map_first_seen: identity.map(|(_, at)| rfc3339(at)),
        events: events
            .into_iter()
            .map(|e| ExportedEvent {
                properties: serde_json::from_str(&e.properties).unwrap_or(serde_json::Value::Null),
                timestamp: rfc3339(e.timestamp_ms),
                received_at: rfc3339(e.received_at_ms),
                insert_id: e.insert_id,
                event: e.event,
            })
            .collect(),
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error(transparent)]
    Store(#[from] minim_store::StoreError),
    #[error(transparent)]
    Query(#[from] minim_query::engine::QueryError),
    #[error("{0}")]
    Internal(String),
}

/// One retention run over every project, each recorded in its deletion log. Blocking.
pub fn run_retention(
    store: &Store,
    meta: &dyn MetaStore,
    now_ms: i64,
) -> Result<Vec<(ProjectId, RetentionReport)>, SubjectError> {
    let mut out = Vec::new();
    for project in meta.list_projects().map_err(PrivacyError::from)? {
        let plan = load_plan(meta, &project.id)?;
        let report = store.apply_retention(&project.id, &retention_policy(&plan))?;
        let json = serde_json::to_string(&report).unwrap_or_default();
        meta.record_deletion(&project.id, "retention", &json, now_ms)
            .map_err(PrivacyError::from)?;
        if report.events_deleted > 0 || report.properties_removed > 0 {
            tracing::info!(
                project = %project.id,
                events = report.events_deleted,
                properties = report.properties_removed,
                "retention removed expired data"
            );
        }
        out.push((project.id, report));
    }
    Ok(out)
}
