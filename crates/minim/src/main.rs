//! The `minim` binary: command-line interface, configuration loading and wiring.

mod access_cmd;
mod allocator;
mod backup;
mod config;
mod keys;
mod load;
mod privacy_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use minim_auth::Action;
use minim_core::ProjectId;
use minim_core::time::Clock;
use minim_meta::{MetaStore, Role, SqliteMeta};

use crate::config::{Config, LogFormat, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "minim",
    version,
    about = "Self-hosted product analytics that keeps less and proves every read."
)]
struct Cli {
    /// Data directory.
    #[arg(long, global = true, env = "MINIM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "MINIM_CONFIG")]
    config: Option<PathBuf>,
    /// Print one JSON object on stdout and nothing else there.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "MINIM_LISTEN")]
        listen: Option<String>,
    },
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Read or replace a project's tracking plan.
    #[command(subcommand)]
    Plan(privacy_cmd::PlanCmd),
    /// Data subject requests: export or erase one user's data.
    #[command(subcommand)]
    Subject(privacy_cmd::SubjectCmd),
    /// Retention: delete what the plans say has expired.
    #[command(subcommand)]
    Retention(privacy_cmd::RetentionCmd),
    /// Manage users (people who log in).
    #[command(subcommand)]
    User(access_cmd::UserCmd),
    /// Verify or read the audit log.
    #[command(subcommand)]
    Audit(access_cmd::AuditCmd),
    /// Suspended principals: list, restore.
    #[command(subcommand)]
    Principal(access_cmd::PrincipalCmd),
    /// Encryption keys: status, rotation.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Encrypted backups of the data directory: create, restore.
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// Write deterministic synthetic events as NDJSON on stdout.
    Gen(GenArgs),
    /// Replay NDJSON events against a server and report throughput and latency.
    Load(load::LoadArgs),
    /// Print the effective configuration (all layers applied) as TOML.
    Config,
}

#[derive(Subcommand, Debug)]
enum ProjectCmd {
    /// Create a project and its public ingest key.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List projects.
    List,
    /// Replace a project's ingest key; the old one stops working.
    RotateKey {
        #[arg(long)]
        project: String,
    },
    /// Delete a project for good: its metadata goes and its keys are destroyed, so its
    /// events are unreadable everywhere, backups and copies included (crypto-shredding).
    Delete {
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Create an API token (shown once).
    Create {
        #[arg(long)]
        project: String,
        /// viewer, analyst, admin or auditor.
        #[arg(long)]
        role: String,
        /// Lifetime: a number with a unit s, m, h or d (at most 365d).
        #[arg(long, default_value = "30d")]
        ttl: String,
    },
    /// Revoke an API token by its id.
    Revoke {
        #[arg(long)]
        id: String,
    },
}

#[derive(Args, Debug)]
struct GenArgs {
    #[arg(long)]
    events: u64,
    #[arg(long)]
    users: Option<u64>,
    #[arg(long)]
    days: Option<u32>,
    #[arg(long)]
    seed: Option<u64>,
    /// First day, YYYY-MM-DD (default 2026-01-01).
    #[arg(long)]
    start: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    let load_config = |listen: Option<String>| -> anyhow::Result<Config> {
        let cfg = Config::load(
            cli.config.as_deref(),
            Overrides {
                data_dir: cli.data_dir.clone(),
                listen,
            },
        )?;
        init_logging(&cfg);
        allocator::configure(&cfg.memory);
        Ok(cfg)
    };
    match cli.command {
        Command::Serve { listen } => serve(load_config(listen)?),
        Command::Project(cmd) => {
            let cfg = load_config(None)?;
            let intent = match &cmd {
                ProjectCmd::Create { .. } => intent("project_create", Action::ManageProject, None),
                ProjectCmd::List => intent("project_list", Action::ReadConfig, None),
                ProjectCmd::RotateKey { project } => {
                    intent("ingest_key_rotate", Action::ManageProject, Some(project))
                }
                ProjectCmd::Delete { project } => {
                    intent("project_delete", Action::ManageProject, Some(project))
                }
            };
            access_cmd::audited(&cfg, intent, || project(&cfg, cmd, json))
        }
        Command::Token(cmd) => {
            let cfg = load_config(None)?;
            let intent = match &cmd {
                TokenCmd::Create { project, .. } => {
                    intent("token_create", Action::ManageTokens, Some(project))
                }
                TokenCmd::Revoke { .. } => intent("token_revoke", Action::ManageTokens, None),
            };
            access_cmd::audited(&cfg, intent, || token(&cfg, cmd, json))
        }
        Command::Plan(cmd) => {
            use privacy_cmd::PlanCmd as P;
            let cfg = load_config(None)?;
            let intent = match &cmd {
                P::Export { project, .. } => {
                    intent("plan_export", Action::ReadConfig, Some(project))
                }
                P::Import { project, .. } => {
                    intent("plan_import", Action::ManageProject, Some(project))
                }
                P::Suggestions { project } => {
                    intent("plan_suggestions", Action::ReadConfig, Some(project))
                }
            };
            access_cmd::audited(&cfg, intent, || privacy_cmd::plan(&cfg, cmd, json))
        }
        Command::Subject(cmd) => {
            use privacy_cmd::SubjectCmd as S;
            let cfg = load_config(None)?;
            // The operator already holds the data directory: a subject export is an
            // `export` here (it is the data subject's access request), audited as such.
            let intent = match &cmd {
                S::Export { project, .. } => {
                    intent("subject_export", Action::Export, Some(project))
                }
                S::Erase { project, .. } => {
                    intent("subject_erase", Action::ManageProject, Some(project))
                }
            };
            access_cmd::audited(&cfg, intent, || privacy_cmd::subject(&cfg, cmd, json))
        }
        Command::Retention(cmd) => {
            let cfg = load_config(None)?;
            let intent = intent("retention_run", Action::ManageProject, None);
            access_cmd::audited(&cfg, intent, || privacy_cmd::retention(&cfg, cmd, json))
        }
        Command::User(cmd) => {
            let cfg = load_config(None)?;
            let intent = match &cmd {
                access_cmd::UserCmd::Create { .. } => {
                    intent("member_create", Action::ManageMembers, None)
                }
                access_cmd::UserCmd::Grant { .. } => {
                    intent("member_grant", Action::ManageMembers, None)
                }
                access_cmd::UserCmd::List => intent("member_list", Action::ManageMembers, None),
            };
            access_cmd::audited(&cfg, intent, || access_cmd::user(&cfg, cmd, json))
        }
        Command::Principal(cmd) => {
            let cfg = load_config(None)?;
            let name = match &cmd {
                access_cmd::PrincipalCmd::Restore { .. } => "principal_restore",
                access_cmd::PrincipalCmd::Suspended => "principal_list",
            };
            let intent = intent(name, Action::ManageMembers, None);
            access_cmd::audited(&cfg, intent, || access_cmd::principal(&cfg, cmd, json))
        }
        Command::Audit(cmd) => {
            let cfg = load_config(None)?;
            if !access_cmd::audit(&cfg, cmd, json)? {
                // `ok: false` is printed; the exit status says it too.
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Keys(cmd) => {
            let cfg = load_config(None)?;
            let intent = match &cmd {
                keys::KeysCmd::Status => intent("keys_status", Action::ReadConfig, None),
                keys::KeysCmd::Rotate { project, .. } => {
                    intent("key_rotate", Action::ManageProject, project.as_ref())
                }
                keys::KeysCmd::Retire { project } => {
                    intent("key_retire", Action::ManageProject, Some(project))
                }
            };
            access_cmd::audited(&cfg, intent, || keys::keys(&cfg, cmd, json))
        }
        Command::Backup(cmd) => {
            let cfg = load_config(None)?;
            match cmd {
                backup::BackupCmd::Create { .. } => {
                    let intent = intent("backup_create", Action::Export, None);
                    access_cmd::audited(&cfg, intent, || backup::backup(&cfg, cmd, json))
                }
                // Nothing may touch the target before the restore; the restored chain
                // then records it.
                backup::BackupCmd::Restore { .. } => {
                    backup::backup(&cfg, cmd, json)?;
                    let intent = intent("backup_restore", Action::ManageProject, None);
                    access_cmd::audited(&cfg, intent, || Ok(()))
                }
            }
        }
        Command::Gen(args) => gen_events(args),
        Command::Load(args) => runtime()?.block_on(load::run(args)),
        Command::Config => {
            let cfg = load_config(None)?;
            print!(
                "{}",
                toml::to_string_pretty(&cfg).context("rendering the configuration")?
            );
            Ok(())
        }
    }
}

fn intent(name: &'static str, action: Action, project: Option<&String>) -> access_cmd::Intent {
    access_cmd::Intent {
        action,
        project: project.cloned(),
        name,
    }
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("MINIM_LOG").unwrap_or_else(|_| EnvFilter::new(&cfg.logging.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match cfg.logging.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The metadata database, encrypted (SQLCipher) under a key derived from the `meta`
/// keyset.
fn open_meta(cfg: &Config) -> anyhow::Result<SqliteMeta> {
    let key = keys::meta_key(&*keys::keyring(cfg)?)?;
    SqliteMeta::open_encrypted(&cfg.meta_path(), &key)
        .with_context(|| format!("opening {}", cfg.meta_path().display()))
}

/// The audit log of the data directory (the server and admin commands share its chain).
pub(crate) fn open_audit(cfg: &Config) -> anyhow::Result<minim_server::Audit> {
    // The keyring first: it refuses a data directory it does not belong to, and on a
    // new one it must exist before anything else is written there.
    keys::keyring(cfg)?;
    minim_server::open_audit(&cfg.data_dir, &cfg.security).map_err(anyhow::Error::msg)
}

fn serve(cfg: Config) -> anyhow::Result<()> {
    tracing::info!(
        allocator_purge_delay_ms = allocator::purge_delay_ms(),
        "memory"
    );
    let meta: Arc<dyn MetaStore> = Arc::new(open_meta(&cfg)?);
    let store = minim_store::Store::open(cfg.store_config()?).context("opening the event store")?;
    let app = minim_server::App::new(
        cfg.server.clone(),
        cfg.ingest.clone(),
        Arc::new(store),
        meta,
        Arc::new(
            minim_query::engine::QueryEngine::new(cfg.query.clone())
                .context("starting the query engine")?,
        ),
        Clock::system(),
        open_audit(&cfg)?,
    )
    .with_privacy(&cfg.privacy)
    .map_err(anyhow::Error::msg)?
    .with_security(&cfg.security)
    .map_err(anyhow::Error::msg)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        minim_server::serve(app, listener, shutdown_signal())
            .await
            .context("serving")
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

fn now_ms() -> i64 {
    Clock::system().now_ms()
}

fn print(json: bool, value: serde_json::Value, human: String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{human}")?;
    }
    Ok(())
}

fn project(cfg: &Config, cmd: ProjectCmd, json: bool) -> anyhow::Result<()> {
    let meta = open_meta(cfg)?;
    match cmd {
        ProjectCmd::Create { name } => {
            let c = meta.create_project(&name, now_ms())?;
            print(
                json,
                serde_json::json!({ "project_id": c.project.id.as_str(), "ingest_key": c.ingest_key }),
                format!(
                    "created project {} ({})\ningest key (shown once): {}",
                    c.project.id, c.project.name, c.ingest_key
                ),
            )
        }
        ProjectCmd::List => {
            let ps = meta.list_projects()?;
            let human = ps
                .iter()
                .map(|p| format!("{}\t{}", p.id, p.name))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<_> = ps
                .iter()
                .map(|p| serde_json::json!({ "project_id": p.id.as_str(), "name": p.name }))
                .collect();
            print(json, serde_json::json!({ "projects": list }), human)
        }
        ProjectCmd::Delete { project } => {
            let id = ProjectId::new(project)?;
            let existed = meta.delete_project(&id)?;
            let destroyed = keys::keyring(cfg)?.destroy_project(id.as_str())?;
            if !existed && !destroyed {
                anyhow::bail!("project {id} not found");
            }
            // The files go now if no server holds the store; else its compactor removes
            // them within a tick. Either way they are unreadable from this moment.
            let removed = match minim_store::Store::open(cfg.store_config()?) {
                Ok(store) => {
                    let n = store.purge_destroyed_now()?;
                    store.shutdown()?;
                    Some(n)
                }
                Err(minim_store::StoreError::Locked(_)) => None,
                Err(e) => return Err(anyhow::anyhow!("opening the event store: {e}")),
            };
            print(
                json,
                serde_json::json!({
                    "project_id": id.as_str(),
                    "deleted": true,
                    "keys_destroyed": destroyed,
                    "segments_removed": removed,
                }),
                format!("deleted project {id}; its keys are destroyed and its data unreadable"),
            )
        }
        ProjectCmd::RotateKey { project } => {
            let id = ProjectId::new(project)?;
            let key = meta.rotate_ingest_key(&id, now_ms())?;
            print(
                json,
                serde_json::json!({ "project_id": id.as_str(), "ingest_key": key }),
                format!("new ingest key for {id} (shown once; the old key no longer works): {key}"),
            )
        }
    }
}

fn token(cfg: &Config, cmd: TokenCmd, json: bool) -> anyhow::Result<()> {
    let meta = open_meta(cfg)?;
    match cmd {
        TokenCmd::Create { project, role, ttl } => {
            let id = ProjectId::new(project)?;
            let role: Role = role.parse()?;
            let ttl_ms = parse_ttl_ms(&ttl)?;
            let t = meta.create_token(&id, role, ttl_ms, now_ms())?;
            let expires = chrono::DateTime::from_timestamp_millis(t.expires_at_ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            print(
                json,
                serde_json::json!({ "token": t.token, "token_id": t.token_id, "expires_at": expires }),
                format!(
                    "token {} (role {}, expires {expires}; shown once):\n{}",
                    t.token_id,
                    role.as_str(),
                    t.token
                ),
            )
        }
        TokenCmd::Revoke { id } => {
            let revoked = meta.revoke_token(&id, now_ms())?;
            if !revoked {
                bail!("no active token with id {id}");
            }
            print(
                json,
                serde_json::json!({ "token_id": id, "revoked": true }),
                format!("revoked {id}"),
            )
        }
    }
}

fn parse_ttl_ms(s: &str) -> anyhow::Result<i64> {
    minim_server::parse_ttl_ms(s).map_err(|e| anyhow::anyhow!("invalid --{e}"))
}

fn gen_events(a: GenArgs) -> anyhow::Result<()> {
    let mut cfg = minim_gen::GenConfig::new(a.events);
    if let Some(u) = a.users {
        cfg.users = u;
    }
    if let Some(d) = a.days {
        cfg.days = d;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(start) = a.start {
        cfg.start = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d")
            .with_context(|| format!("invalid --start {start:?}: expected YYYY-MM-DD"))?;
    }
    match minim_gen::write_ndjson(cfg, std::io::stdout().lock()) {
        Ok(_) => Ok(()),
        Err(minim_gen::GenError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ttl_ms;

    #[test]
    fn ttl_units_and_bounds() {
        assert_eq!(parse_ttl_ms("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_ttl_ms("90m").unwrap(), 90 * 60_000);
        for bad in ["", "d", "10", "10w", "0s", "366d", "-1d"] {
            assert!(parse_ttl_ms(bad).is_err(), "{bad:?} accepted");
        }
    }
}
