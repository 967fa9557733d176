//! The authorizer against reference models, on random principals, actions, resources
//! and contexts (proptest), with organization "acme" having policies of its own:
//!
//! - `model`: the rules as the design states them, in plain Rust (allowed or not);
//! - `model_policies`: which policies Cedar must name, policy by policy (the permits
//!   that allowed, or the forbids that denied), which checks the ids for the audit log.

use std::collections::BTreeSet;

use minim_auth::policy::Authorizer;
use minim_auth::{Action, Context, Grants, Principal, PrincipalKind, Resource, Role};
use proptest::prelude::*;

/// Organization "acme"'s own policies: viewers may run SQL, tokens may not export.
const ACME_POLICIES: &str = r#"
@id("viewers-sql")
permit (principal, action == Action::"query_sql", resource)
when { principal has role && principal.role == "viewer" };

@id("no-token-export")
forbid (principal is Token, action == Action::"export", resource);
"#;

/// What each role allows, written out independently of `roles.cedar`.
fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    let analyst = [QueryAggregate, QueryRawEvents, QuerySql, Export, ReadConfig];
    match role {
        Role::Viewer => action == QueryAggregate,
        Role::Analyst => analyst.contains(&action),
        Role::Admin => {
            analyst.contains(&action)
                || [
                    ApproveExport,
                    ManageProject,
                    ManageMembers,
                    ManageTokens,
                    ReadAudit,
                ]
                .contains(&action)
        }
        Role::Auditor => action == ReadAudit,
    }
}

/// The project a principal's grants are limited to (an ingest key's id is its project).
fn scope(p: &Principal) -> Option<&str> {
    match (&p.grants.project, p.kind) {
        (Some(project), _) => Some(project.as_str()),
        (None, PrincipalKind::IngestKey) => Some(p.id.as_str()),
        (None, _) => None,
    }
}

fn is_project(resource: &Resource, project: &str) -> bool {
    matches!(resource, Resource::Project { id, .. } if id == project)
}

/// The rules as stated in the design.
fn model(p: &Principal, action: Action, resource: &Resource, ctx: &Context) -> bool {
    let acme = p.org == "acme";
    if p.suspended || resource.org() != p.org {
        return false;
    }
    if let Some(project) = scope(p)
        && !is_project(resource, project)
    {
        return false;
    }
    if p.kind == PrincipalKind::IngestKey || action == Action::Ingest {
        return p.kind == PrincipalKind::IngestKey && action == Action::Ingest;
    }
    if action == Action::ReadPersonal && !p.grants.permissions.contains(&Action::ReadPersonal) {
        return false;
    }
    if action == Action::ApproveExport && p.kind == PrincipalKind::User && !ctx.mfa_fresh {
        return false;
    }
    if acme && p.kind == PrincipalKind::Token && action == Action::Export {
        return false;
    }
    p.kind == PrincipalKind::Cli
        || p.grants.role.is_some_and(|r| role_allows(r, action))
        || p.grants.permissions.contains(&action)
        || (acme && p.grants.role == Some(Role::Viewer) && action == Action::QuerySql)
}

/// Policy by policy: the satisfied permits if no forbid is satisfied, else the
/// satisfied forbids (Cedar's determining policies), sorted.
fn model_policies(
    p: &Principal,
    action: Action,
    resource: &Resource,
    ctx: &Context,
) -> Vec<String> {
    let acme = p.org == "acme";
    let project = scope(p);
    let mut forbids = Vec::new();
    let mut forbid = |id: &str, when: bool| {
        if when {
            forbids.push(id.to_string());
        }
    };
    forbid("forbid:suspended", p.suspended);
    forbid("forbid:other_org", resource.org() != p.org);
    forbid(
        "forbid:other_project",
        project.is_some_and(|project| !is_project(resource, project)),
    );
    forbid(
        "forbid:ingest_only_by_ingest_keys",
        action == Action::Ingest && p.kind != PrincipalKind::IngestKey,
    );
    forbid(
        "forbid:ingest_key_only_ingests",
        p.kind == PrincipalKind::IngestKey && action != Action::Ingest,
    );
    forbid(
        "forbid:read_personal_needs_grant",
        action == Action::ReadPersonal && !p.grants.permissions.contains(&Action::ReadPersonal),
    );
    forbid(
        "forbid:approve_export_needs_mfa",
        p.kind == PrincipalKind::User && action == Action::ApproveExport && !ctx.mfa_fresh,
    );
    forbid(
        "org:acme:no-token-export",
        acme && p.kind == PrincipalKind::Token && action == Action::Export,
    );
    if !forbids.is_empty() {
        forbids.sort();
        return forbids;
    }

    let mut permits = Vec::new();
    if let Some(role) = p.grants.role {
        // `resource in ?resource`: the grants' project, or the principal's org.
        let in_scope = match project {
            Some(project) => is_project(resource, project),
            None => resource.org() == p.org,
        };
        if role_allows(role, action) && in_scope {
            permits.push(format!("role:{}", role.as_str()));
        }
    }
    if action != Action::Ingest && p.grants.permissions.contains(&action) {
        permits.push(format!("grant:{}", action.as_str()));
    }
    if p.kind == PrincipalKind::IngestKey
        && action == Action::Ingest
        && project.is_some_and(|project| is_project(resource, project))
    {
        permits.push("ingest:own_project".to_string());
    }
    if p.kind == PrincipalKind::Cli {
        permits.push("cli:operator".to_string());
    }
    if acme && p.grants.role == Some(Role::Viewer) && action == Action::QuerySql {
        permits.push("org:acme:viewers-sql".to_string());
    }
    permits.sort();
    permits
}

const ORGS: [&str; 2] = ["acme", "beta"];
const PROJECTS: [&str; 3] = ["p1", "p2", "p3"];

fn kind() -> impl Strategy<Value = PrincipalKind> {
    prop_oneof![
        Just(PrincipalKind::User),
        Just(PrincipalKind::Token),
        Just(PrincipalKind::IngestKey),
        Just(PrincipalKind::Cli),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    (0..Action::ALL.len()).prop_map(|i| Action::ALL[i])
}

fn principal() -> impl Strategy<Value = Principal> {
    (
        kind(),
        0..ORGS.len(),
        proptest::option::of(0..Role::ALL.len()),
        proptest::collection::btree_set(action(), 0..4),
        proptest::option::of(0..PROJECTS.len()),
        0..PROJECTS.len(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(kind, org, role, permissions, project, key_project, suspended)| {
                let id = match kind {
                    PrincipalKind::IngestKey => PROJECTS[key_project].to_string(),
                    PrincipalKind::Cli => "cli".to_string(),
                    _ => "usr_or_tok".to_string(),
                };
                Principal {
                    id,
                    kind,
                    org: ORGS[org].to_string(),
                    grants: Grants {
                        role: role.map(|r| Role::ALL[r]),
                        permissions: permissions.into_iter().collect::<BTreeSet<_>>(),
                        project: project.map(|p| PROJECTS[p].to_string()),
                    },
                    suspended,
                }
            },
        )
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        (0..PROJECTS.len(), 0..ORGS.len()).prop_map(|(p, o)| Resource::Project {
            id: PROJECTS[p].to_string(),
            org: ORGS[o].to_string(),
        }),
        (0..ORGS.len()).prop_map(|o| Resource::Org {
            id: ORGS[o].to_string()
        }),
    ]
}

fn context() -> impl Strategy<Value = Context> {
    (any::<bool>(), any::<bool>()).prop_map(|(mfa_fresh, mfa_enrolled)| Context {
        mfa_fresh,
        mfa_enrolled,
        ip: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn authorizer_agrees_with_the_reference_models(
        p in principal(),
        a in action(),
        r in resource(),
        ctx in context(),
    ) {
        let decision = shared().authorize(&p, a, &r, &ctx);
        prop_assert!(decision.errors.is_empty(), "{:?}", decision);
        prop_assert_eq!(
            decision.allowed,
            model(&p, a, &r, &ctx),
            "{:?} {:?} {:?} {:?} -> {:?}", p, a, r, ctx, decision
        );
        prop_assert_eq!(
            &decision.policies,
            &model_policies(&p, a, &r, &ctx),
            "{:?} {:?} {:?} {:?} -> {:?}", p, a, r, ctx, decision
        );
    }
}

fn shared() -> &'static Authorizer {
    static AUTHORIZER: std::sync::OnceLock<Authorizer> = std::sync::OnceLock::new();
    AUTHORIZER.get_or_init(|| {
        let authorizer = Authorizer::new();
        authorizer
            .set_org_policies("acme", ACME_POLICIES)
            .expect("acme's policies are valid");
        authorizer
    })
}
