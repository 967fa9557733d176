//! Admin commands and the one authorization point of the CLI. Every command that changes
//! configuration or reads event data runs through [`audited`]: the local operator is the
//! `cli` principal (Cedar: everything in its organization except `read_personal`), the
//! decision is the authorizer's, and the outcome is appended to the same hash-chained
//! audit log the server writes. Also `user create|grant|list`, `audit verify|list` and
//! `principal restore`.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;
use minim_auth::policy::Authorizer;
use minim_auth::{Action, Context as AuthContext, Grants, Principal, PrincipalKind, Resource};
use minim_core::ProjectId;
use minim_meta::{Membership, MetaStore, Role};

use crate::config::Config;
use crate::{now_ms, open_meta, print};

const ORG: &str = "default";

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user (a person who logs in) with an organization-wide role.
    Create {
        #[arg(long)]
        email: String,
        /// viewer, analyst, admin or auditor.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (otherwise one is generated and shown once).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Grant an explicit permission (e.g. read_personal), organization-wide or for one project.
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        permission: String,
        #[arg(long)]
        project: Option<String>,
    },
    /// List users and their memberships.
    List,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the whole audit chain and its signed checkpoints.
    Verify {
        /// Also compare with an off-host mirror copy (catches a consistent truncation).
        #[arg(long)]
        mirror: Option<std::path::PathBuf>,
    },
    /// Print the newest audit records.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        action: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PrincipalCmd {
    /// Lift the suspension of a user or token (after repeated budget trips).
    Restore {
        #[arg(long)]
        id: String,
    },
    /// List suspended principals.
    Suspended,
}

/// What an admin command does to what, for authorization and the audit log.
pub struct Intent {
    pub action: Action,
    /// `Some(project)` for project actions, `None` for organization ones.
    pub project: Option<String>,
    /// The audit action name (more specific than the Cedar action).
    pub name: &'static str,
}

/// Authorizes the operator for `intent`, runs `f`, and audits the outcome. Refuses to
/// run when the audit log cannot be opened; reports an error when the outcome cannot be
/// recorded.
pub fn audited(
    cfg: &Config,
    intent: Intent,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let audit = crate::open_audit(cfg)?;
    let principal = Principal {
        id: "cli".into(),
        kind: PrincipalKind::Cli,
        org: ORG.into(),
        grants: Grants::default(),
        suspended: false,
    };
    let resource = match &intent.project {
        Some(p) => Resource::Project {
            id: p.clone(),
            org: ORG.into(),
        },
        None => Resource::Org { id: ORG.into() },
    };
    let decision = Authorizer::new().authorize(
        &principal,
        intent.action,
        &resource,
        &AuthContext::default(),
    );
    let resource_name = intent
        .project
        .as_ref()
        .map_or_else(|| format!("org:{ORG}"), |p| format!("project:{p}"));
    let outcome = if decision.allowed {
        f()
    } else {
        Err(anyhow::anyhow!("not allowed to {}", intent.action.as_str()))
    };
    let event = minim_audit::AuditEvent {
        time_ms: now_ms(),
        principal: "cli".into(),
        principal_kind: PrincipalKind::Cli.as_str().into(),
        action: intent.name.into(),
        resource: resource_name,
        decision: match (&outcome, decision.allowed) {
            (_, false) => minim_audit::Decision::Deny,
            (Ok(()), true) => minim_audit::Decision::Allow,
            (Err(_), true) => minim_audit::Decision::Error,
        },
        status: u16::from(outcome.is_err()),
        rows: 0,
        bytes: 0,
        distinct_users: 0,
        fingerprint: None,
        client_ip_hash: None,
        reason: None,
        request_id: None,
    };
    audit
        .log
        .append_one(event)
        .context("the command ran but its audit record could not be written")?;
    outcome
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

pub fn user(cfg: &Config, cmd: UserCmd, json: bool) -> anyhow::Result<()> {
    let meta = open_meta(cfg)?;
    match cmd {
        UserCmd::Create {
            email,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (minim_auth::secrets::random_token("", 18), true)
            };
            minim_auth::password::check_password_policy(&password)
                .map_err(|e| anyhow::anyhow!("password refused: {e}"))?;
            let hash = minim_auth::password::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
            let u = meta.create_user(&email, Some(&hash), role, now_ms())?;
            let mut out = serde_json::json!({ "user_id": u.id });
            let mut human = format!("created user {} ({})", u.id, role.as_str());
            if generated {
                out["initial_password"] = password.clone().into();
                human.push_str(&format!("\ninitial password (shown once): {password}"));
            }
            if role == Role::Admin {
                human.push_str("\nadmins must enroll a second factor after their first login");
            }
            print(json, out, human)
        }
        UserCmd::Grant {
            email,
            permission,
            project,
        } => {
            if Action::parse(&permission).is_none() {
                bail!("unknown permission {permission:?}");
            }
            let user = meta
                .user_by_email(&email)?
                .with_context(|| format!("no user with email {email}"))?;
            let project = project.map(ProjectId::new).transpose()?;
            let mut m = meta
                .memberships(&user.id)?
                .into_iter()
                .find(|m| m.project == project)
                .unwrap_or(Membership {
                    project: project.clone(),
                    role: None,
                    permissions: Vec::new(),
                });
            if !m.permissions.contains(&permission) {
                m.permissions.push(permission.clone());
            }
            meta.set_membership(&user.id, &m)?;
            print(
                json,
                serde_json::json!({ "user_id": user.id, "permissions": m.permissions }),
                format!("granted {permission} to {}", user.id),
            )
        }
        UserCmd::List => {
            let mut rows = Vec::new();
            let mut human = Vec::new();
            for u in meta.list_users(ORG)? {
                let ms = meta.memberships(&u.id)?;
                let roles: Vec<String> = ms
                    .iter()
                    .map(|m| {
                        format!(
                            "{}:{}{}",
                            m.project.as_ref().map_or("*", ProjectId::as_str),
                            m.role.map_or("-", Role::as_str),
                            if m.permissions.is_empty() {
                                String::new()
                            } else {
                                format!("+{}", m.permissions.join("+"))
                            }
                        )
                    })
                    .collect();
                human.push(format!(
                    "{}\t{}\tmfa={}",
                    u.id,
                    roles.join(","),
                    u.mfa_enabled
                ));
                rows.push(serde_json::json!({ "user_id": u.id, "memberships": roles, "mfa_enabled": u.mfa_enabled }));
            }
            print(json, serde_json::json!({ "users": rows }), human.join("\n"))
        }
    }
}

/// `minim audit verify` reads the log as it is and writes nothing (a broken log could not
/// take a record anyway); `audit list` is an audited read.
pub fn audit(cfg: &Config, cmd: AuditCmd, json: bool) -> anyhow::Result<bool> {
    let dir = cfg.data_dir.join("audit");
    let key = cfg
        .security
        .signing_key_path(&cfg.data_dir)
        .map_err(anyhow::Error::msg)?;
    match cmd {
        AuditCmd::Verify { mirror } => {
            let report = minim_audit::verify(&dir, &key).context("verifying the audit log")?;
            let mut ok = report.ok;
            let mut value = serde_json::to_value(&report)?;
            if let Some(m) = mirror {
                let mr = minim_audit::verify_against_mirror(&dir, &m)
                    .context("comparing with the mirror")?;
                ok &= mr.ok;
                value["ok"] = ok.into();
                value["mirror"] = serde_json::to_value(&mr)?;
            }
            let human = match &report.first_bad {
                None if ok => format!(
                    "audit log OK: {} records, {} signed checkpoints",
                    report.records, report.checkpoints
                ),
                None => "audit log differs from its mirror copy".to_owned(),
                Some(b) => format!(
                    "audit log TAMPERED: first bad record seq {} (line {} of {}): {}",
                    b.seq, b.line, b.file, b.reason
                ),
            };
            print(json, value, human)?;
            Ok(ok)
        }
        AuditCmd::List {
            limit,
            principal,
            action,
        } => {
            let mut out = Vec::new();
            audited(
                cfg,
                Intent {
                    action: Action::ReadAudit,
                    project: None,
                    name: "audit_list",
                },
                || {
                    let log = crate::open_audit(cfg)?;
                    let filter = minim_audit::Filter {
                        principal,
                        action,
                        ..Default::default()
                    };
                    out = log.log.query(&filter, limit.clamp(1, 10_000))?;
                    Ok(())
                },
            )?;
            let human = out
                .iter()
                .map(|r| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}\t{:?}\t{}",
                        r.seq,
                        r.event.time_ms,
                        r.event.principal,
                        r.event.action,
                        r.event.resource,
                        r.event.decision,
                        r.event.status
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(json, serde_json::json!({ "records": out }), human)?;
            Ok(true)
        }
    }
}

pub fn principal(cfg: &Config, cmd: PrincipalCmd, json: bool) -> anyhow::Result<()> {
    let meta = open_meta(cfg)?;
    match cmd {
        PrincipalCmd::Restore { id } => {
            if !meta.restore(&id)? {
                bail!("{id} is not suspended");
            }
            print(
                json,
                serde_json::json!({ "restored": id }),
                format!("restored {id}; its read budgets start over"),
            )
        }
        PrincipalCmd::Suspended => {
            let rows = meta.suspensions(ORG)?;
            let human = rows
                .iter()
                .map(|(p, r, at)| format!("{p}\t{at}\t{r}"))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<_> = rows
                .iter()
                .map(
                    |(p, r, at)| serde_json::json!({ "principal": p, "reason": r, "since_ms": at }),
                )
                .collect();
            print(json, serde_json::json!({ "suspended": list }), human)
        }
    }
}
