//! The authorizer's rules beyond the role matrix: explicit grants, permission-list
//! tokens, suspension, MFA for approvals, organization policies (permit, forbid,
//! refusal, isolation), ingest keys and the CLI operator.

use std::collections::BTreeSet;
use std::sync::Arc;

use minim_auth::policy::{Authorizer, Decision, MAX_ORG_POLICY_BYTES, PolicyError};
use minim_auth::{Action, Context, Grants, Principal, PrincipalKind, Resource, Role};

fn principal(
    kind: PrincipalKind,
    org: &str,
    role: Option<Role>,
    project: Option<&str>,
) -> Principal {
    let id = match kind {
        PrincipalKind::User => "usr_1",
        PrincipalKind::Token => "tok_1",
        PrincipalKind::IngestKey => "p1",
        PrincipalKind::Cli => "cli",
    };
    Principal {
        id: id.into(),
        kind,
        org: org.into(),
        grants: Grants {
            role,
            permissions: BTreeSet::new(),
            project: project.map(str::to_string),
        },
        suspended: false,
    }
}

fn user(role: Role) -> Principal {
    principal(PrincipalKind::User, "acme", Some(role), Some("p1"))
}

fn with_permissions(mut p: Principal, actions: &[Action]) -> Principal {
    p.grants.permissions = actions.iter().copied().collect();
    p
}

fn project(id: &str, org: &str) -> Resource {
    Resource::Project {
        id: id.into(),
        org: org.into(),
    }
}

fn p1() -> Resource {
    project("p1", "acme")
}

fn mfa() -> Context {
    Context {
        mfa_fresh: true,
        mfa_enrolled: true,
        ip: None,
    }
}

fn no_mfa() -> Context {
    Context::default()
}

fn allowed_by(d: &Decision, ids: &[&str]) {
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policies, ids, "{d:?}");
    assert!(d.errors.is_empty(), "{d:?}");
}

fn denied_by(d: &Decision, ids: &[&str]) {
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.policies, ids, "{d:?}");
    assert!(d.errors.is_empty(), "{d:?}");
}

#[test]
fn read_personal_only_through_an_explicit_grant() {
    let authz = Authorizer::new();
    for role in Role::ALL {
        let d = authz.authorize(&user(role), Action::ReadPersonal, &p1(), &mfa());
        denied_by(&d, &["forbid:read_personal_needs_grant"]);
    }
    let granted = with_permissions(user(Role::Analyst), &[Action::ReadPersonal]);
    let d = authz.authorize(&granted, Action::ReadPersonal, &p1(), &mfa());
    allowed_by(&d, &["grant:read_personal"]);
    // The grant is scoped like everything else.
    let d = authz.authorize(
        &granted,
        Action::ReadPersonal,
        &project("p2", "acme"),
        &mfa(),
    );
    denied_by(&d, &["forbid:other_project"]);
    // An organization policy cannot hand it out either.
    authz
        .set_org_policies("acme", "permit(principal, action, resource);")
        .unwrap();
    let d = authz.authorize(&user(Role::Admin), Action::ReadPersonal, &p1(), &mfa());
    denied_by(&d, &["forbid:read_personal_needs_grant"]);
}

#[test]
fn permission_list_token_gets_exactly_its_list() {
    let authz = Authorizer::new();
    let list = [Action::QueryAggregate, Action::Export];
    let token = with_permissions(
        principal(PrincipalKind::Token, "acme", None, Some("p1")),
        &list,
    );
    for action in Action::ALL {
        let d = authz.authorize(&token, action, &p1(), &no_mfa());
        assert_eq!(d.allowed, list.contains(&action), "{action:?}: {d:?}");
        if d.allowed {
            assert_eq!(d.policies, vec![format!("grant:{}", action.as_str())]);
        }
        for elsewhere in [
            project("p2", "acme"),
            project("p1", "beta"),
            Resource::Org { id: "acme".into() },
        ] {
            let d = authz.authorize(&token, action, &elsewhere, &no_mfa());
            assert!(!d.allowed, "{action:?} on {elsewhere:?}: {d:?}");
        }
    }
}

#[test]
fn explicit_grants_add_to_a_role() {
    let authz = Authorizer::new();
    let viewer = with_permissions(user(Role::Viewer), &[Action::QuerySql]);
    allowed_by(
        &authz.authorize(&viewer, Action::QuerySql, &p1(), &no_mfa()),
        &["grant:query_sql"],
    );
    allowed_by(
        &authz.authorize(&viewer, Action::QueryAggregate, &p1(), &no_mfa()),
        &["role:viewer"],
    );
    denied_by(
        &authz.authorize(&viewer, Action::Export, &p1(), &no_mfa()),
        &[],
    );
}

#[test]
fn nobody_but_an_ingest_key_ingests_not_even_with_a_grant() {
    let authz = Authorizer::new();
    authz
        .set_org_policies("acme", "permit(principal, action, resource);")
        .unwrap();
    for kind in [
        PrincipalKind::User,
        PrincipalKind::Token,
        PrincipalKind::Cli,
    ] {
        let p = with_permissions(
            principal(kind, "acme", Some(Role::Admin), Some("p1")),
            &[Action::Ingest],
        );
        let d = authz.authorize(&p, Action::Ingest, &p1(), &mfa());
        denied_by(&d, &["forbid:ingest_only_by_ingest_keys"]);
    }
}

#[test]
fn suspended_principals_are_denied_everything() {
    let authz = Authorizer::new();
    authz
        .set_org_policies("acme", "permit(principal, action, resource);")
        .unwrap();
    let everything = Action::ALL;
    for kind in [
        PrincipalKind::User,
        PrincipalKind::Token,
        PrincipalKind::IngestKey,
        PrincipalKind::Cli,
    ] {
        let mut p = with_permissions(
            principal(kind, "acme", Some(Role::Admin), None),
            &everything,
        );
        p.suspended = true;
        for action in Action::ALL {
            for resource in [p1(), Resource::Org { id: "acme".into() }] {
                let d = authz.authorize(&p, action, &resource, &mfa());
                assert!(!d.allowed, "{kind:?} {action:?}: {d:?}");
                assert!(
                    d.policies.contains(&"forbid:suspended".to_string()),
                    "{d:?}"
                );
            }
        }
    }
}

#[test]
fn approve_export_needs_a_fresh_second_factor_for_users() {
    let authz = Authorizer::new();
    let admin = user(Role::Admin);
    denied_by(
        &authz.authorize(&admin, Action::ApproveExport, &p1(), &no_mfa()),
        &["forbid:approve_export_needs_mfa"],
    );
    let enrolled_only = Context {
        mfa_enrolled: true,
        ..Context::default()
    };
    assert!(
        !authz
            .authorize(&admin, Action::ApproveExport, &p1(), &enrolled_only)
            .allowed
    );
    allowed_by(
        &authz.authorize(&admin, Action::ApproveExport, &p1(), &mfa()),
        &["role:admin"],
    );
    // An org policy cannot lower the floor.
    authz
        .set_org_policies(
            "acme",
            r#"permit(principal, action == Action::"approve_export", resource);"#,
        )
        .unwrap();
    assert!(
        !authz
            .authorize(&admin, Action::ApproveExport, &p1(), &no_mfa())
            .allowed
    );
    // Tokens have no second factor; the forbid is for sessions of people.
    let token = principal(PrincipalKind::Token, "acme", Some(Role::Admin), Some("p1"));
    assert!(
        authz
            .authorize(&token, Action::ApproveExport, &p1(), &no_mfa())
            .allowed
    );
}

#[test]
fn org_policy_permit_lets_viewers_run_sql() {
    let authz = Authorizer::new();
    let viewer = user(Role::Viewer);
    denied_by(
        &authz.authorize(&viewer, Action::QuerySql, &p1(), &no_mfa()),
        &[],
    );
    authz
        .set_org_policies(
            "acme",
            r#"
            // Viewers may run SQL too.
            permit (principal, action == Action::"query_sql", resource)
            when { principal has role && principal.role == "viewer" };
            "#,
        )
        .unwrap();
    allowed_by(
        &authz.authorize(&viewer, Action::QuerySql, &p1(), &no_mfa()),
        &["org:acme:policy0"],
    );
    // Still only on the viewer's project.
    denied_by(
        &authz.authorize(&viewer, Action::QuerySql, &project("p2", "acme"), &no_mfa()),
        &["forbid:other_project"],
    );
    // Analysts are unaffected; viewers get nothing else.
    assert!(
        !authz
            .authorize(&viewer, Action::Export, &p1(), &no_mfa())
            .allowed
    );
}

#[test]
fn org_policy_forbid_wins_over_roles() {
    let authz = Authorizer::new();
    authz
        .set_org_policies(
            "acme",
            r#"
            @id("no-sql-for-tokens")
            forbid (principal is Token, action == Action::"query_sql", resource);
            "#,
        )
        .unwrap();
    let token = principal(PrincipalKind::Token, "acme", Some(Role::Admin), Some("p1"));
    denied_by(
        &authz.authorize(&token, Action::QuerySql, &p1(), &no_mfa()),
        &["org:acme:no-sql-for-tokens"],
    );
    assert!(
        authz
            .authorize(&token, Action::QueryAggregate, &p1(), &no_mfa())
            .allowed
    );
    allowed_by(
        &authz.authorize(&user(Role::Analyst), Action::QuerySql, &p1(), &no_mfa()),
        &["role:analyst"],
    );
}

#[test]
fn org_policies_may_use_the_client_address() {
    let authz = Authorizer::new();
    authz
        .set_org_policies(
            "acme",
            r#"
            @id("office-only")
            forbid (principal, action, resource)
            unless { context has ip && context.ip.isInRange(ip("10.0.0.0/8")) };
            "#,
        )
        .unwrap();
    let analyst = user(Role::Analyst);
    let at = |ip: Option<&str>| Context {
        ip: ip.map(|s| s.parse().unwrap()),
        ..Context::default()
    };
    allowed_by(
        &authz.authorize(&analyst, Action::QuerySql, &p1(), &at(Some("10.1.2.3"))),
        &["role:analyst"],
    );
    denied_by(
        &authz.authorize(&analyst, Action::QuerySql, &p1(), &at(Some("192.0.2.1"))),
        &["org:acme:office-only"],
    );
    denied_by(
        &authz.authorize(&analyst, Action::QuerySql, &p1(), &at(Some("2001:db8::1"))),
        &["org:acme:office-only"],
    );
    denied_by(
        &authz.authorize(&analyst, Action::QuerySql, &p1(), &at(None)),
        &["org:acme:office-only"],
    );
}

#[test]
fn bad_org_policy_is_refused_and_the_previous_ones_stay() {
    let authz = Authorizer::new();
    let good = r#"permit (principal, action == Action::"query_sql", resource) when { principal has role && principal.role == "viewer" };"#;
    authz.set_org_policies("acme", good).unwrap();
    let viewer = user(Role::Viewer);
    assert!(
        authz
            .authorize(&viewer, Action::QuerySql, &p1(), &no_mfa())
            .allowed
    );

    // Syntax error, reported with its line.
    let err = authz
        .set_org_policies(
            "acme",
            "permit (principal, action, resource);\nforbid (principal action, resource);",
        )
        .unwrap_err();
    assert!(matches!(err, PolicyError::Parse(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("line 2"), "{msg}");

    // Unknown action, unknown attribute, wrong type: refused by the schema.
    for (text, needle) in [
        (
            r#"permit (principal, action == Action::"drop_tables", resource);"#,
            "drop_tables",
        ),
        (
            "permit (principal, action, resource) when { principal.clearance > 3 };",
            "clearance",
        ),
        (
            r#"permit (principal, action, resource) when { context.mfa_fresh == "yes" };"#,
            "line 1",
        ),
    ] {
        let err = authz.set_org_policies("acme", text).unwrap_err();
        assert!(matches!(err, PolicyError::Invalid(_)), "{text}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{text}: {msg}");
        // One mistake, one message (not one per principal type and action).
        assert_eq!(msg.matches("line 1").count(), 1, "{msg}");
    }

    // Templates, duplicate ids, oversized text.
    let err = authz
        .set_org_policies(
            "acme",
            "\npermit (principal == ?principal, action, resource);",
        )
        .unwrap_err();
    assert!(matches!(err, PolicyError::Template { line: 2 }), "{err:?}");
    let err = authz
        .set_org_policies(
            "acme",
            r#"@id("x") permit (principal, action, resource); @id("x") forbid (principal, action, resource);"#,
        )
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::DuplicateId(ref id) if id == "x"),
        "{err:?}"
    );
    let huge = format!("// {}\n{good}", "x".repeat(MAX_ORG_POLICY_BYTES));
    let err = authz.set_org_policies("acme", &huge).unwrap_err();
    assert!(matches!(err, PolicyError::TooLarge { .. }), "{err:?}");
    assert!(matches!(
        authz.set_org_policies("", good).unwrap_err(),
        PolicyError::InvalidOrg
    ));

    // Nothing changed.
    assert_eq!(authz.org_policies("acme").as_deref(), Some(good));
    allowed_by(
        &authz.authorize(&viewer, Action::QuerySql, &p1(), &no_mfa()),
        &["org:acme:policy0"],
    );
}

#[test]
fn empty_policy_text_removes_the_org_policies() {
    let authz = Authorizer::new();
    assert_eq!(authz.org_policies("acme"), None);
    authz
        .set_org_policies(
            "acme",
            r#"forbid (principal, action == Action::"export", resource);"#,
        )
        .unwrap();
    assert!(authz.org_policies("acme").is_some());
    assert!(
        !authz
            .authorize(&user(Role::Analyst), Action::Export, &p1(), &no_mfa())
            .allowed
    );
    authz.set_org_policies("acme", "// nothing\n").unwrap();
    assert_eq!(authz.org_policies("acme"), None);
    assert!(
        authz
            .authorize(&user(Role::Analyst), Action::Export, &p1(), &no_mfa())
            .allowed
    );
}

#[test]
fn org_a_policies_do_not_affect_org_b() {
    let authz = Authorizer::new();
    authz
        .set_org_policies(
            "acme",
            r#"
            permit (principal, action, resource);
            permit (principal, action, resource in Org::"beta");
            forbid (principal, action == Action::"query_aggregate", resource);
            "#,
        )
        .unwrap();
    let acme_viewer = user(Role::Viewer);
    let beta_viewer = principal(PrincipalKind::User, "beta", Some(Role::Viewer), Some("p9"));
    let p9 = project("p9", "beta");
    // acme's permit-all works in acme ...
    assert!(
        authz
            .authorize(&acme_viewer, Action::QuerySql, &p1(), &no_mfa())
            .allowed
    );
    // ... but never reaches beta's resources,
    for action in Action::ALL {
        let d = authz.authorize(&acme_viewer, action, &p9, &mfa());
        assert!(!d.allowed, "{action:?}: {d:?}");
        let d = authz.authorize(
            &acme_viewer,
            action,
            &Resource::Org { id: "beta".into() },
            &mfa(),
        );
        assert!(!d.allowed, "{action:?}: {d:?}");
    }
    // and beta's principals see none of acme's policies, permit or forbid.
    denied_by(
        &authz.authorize(&beta_viewer, Action::QuerySql, &p9, &no_mfa()),
        &[],
    );
    allowed_by(
        &authz.authorize(&beta_viewer, Action::QueryAggregate, &p9, &no_mfa()),
        &["role:viewer"],
    );
    assert_eq!(authz.org_policies("beta"), None);
}

#[test]
fn ingest_key_only_ingests_into_its_own_project() {
    let authz = Authorizer::new();
    authz
        .set_org_policies("acme", "permit(principal, action, resource);")
        .unwrap();
    // Project from the grants, or (no grants project) the key's own id.
    let keys = [
        principal(PrincipalKind::IngestKey, "acme", None, Some("p1")),
        principal(PrincipalKind::IngestKey, "acme", None, None),
    ];
    for key in keys {
        allowed_by(
            &authz.authorize(&key, Action::Ingest, &p1(), &no_mfa()),
            &["ingest:own_project", "org:acme:policy0"],
        );
        assert!(
            !authz
                .authorize(&key, Action::Ingest, &project("p2", "acme"), &no_mfa())
                .allowed
        );
        assert!(
            !authz
                .authorize(&key, Action::Ingest, &project("p1", "beta"), &no_mfa())
                .allowed
        );
        assert!(
            !authz
                .authorize(
                    &key,
                    Action::Ingest,
                    &Resource::Org { id: "acme".into() },
                    &no_mfa()
                )
                .allowed
        );
        // Nothing else, even with a role and every permission.
        let mut loaded = with_permissions(key.clone(), &Action::ALL);
        loaded.grants.role = Some(Role::Admin);
        for action in Action::ALL.into_iter().filter(|a| *a != Action::Ingest) {
            let d = authz.authorize(&loaded, action, &p1(), &mfa());
            assert!(!d.allowed, "{action:?}: {d:?}");
            assert!(
                d.policies
                    .contains(&"forbid:ingest_key_only_ingests".to_string()),
                "{d:?}"
            );
        }
    }
    // Without the org's permit-all, the built-in permit alone decides.
    let authz = Authorizer::new();
    let key = principal(PrincipalKind::IngestKey, "acme", None, Some("p1"));
    allowed_by(
        &authz.authorize(&key, Action::Ingest, &p1(), &no_mfa()),
        &["ingest:own_project"],
    );
}

#[test]
fn cli_operator_may_do_everything_but_ingest_and_read_personal() {
    let authz = Authorizer::new();
    let cli = principal(PrincipalKind::Cli, "acme", None, None);
    for action in Action::ALL {
        for resource in [
            p1(),
            project("p2", "acme"),
            Resource::Org { id: "acme".into() },
        ] {
            let d = authz.authorize(&cli, action, &resource, &no_mfa());
            let expected = !matches!(action, Action::Ingest | Action::ReadPersonal);
            assert_eq!(d.allowed, expected, "{action:?} on {resource:?}: {d:?}");
            if expected {
                assert_eq!(d.policies, ["cli:operator"]);
            }
        }
        // Scoped to the organization it acts for.
        assert!(
            !authz
                .authorize(&cli, action, &project("p9", "beta"), &no_mfa())
                .allowed
        );
    }
    let granted = with_permissions(cli, &[Action::ReadPersonal]);
    allowed_by(
        &authz.authorize(&granted, Action::ReadPersonal, &p1(), &no_mfa()),
        &["cli:operator", "grant:read_personal"],
    );
}

#[test]
fn org_resources_need_org_wide_grants() {
    let authz = Authorizer::new();
    let acme = Resource::Org { id: "acme".into() };
    let org_admin = principal(PrincipalKind::User, "acme", Some(Role::Admin), None);
    allowed_by(
        &authz.authorize(&org_admin, Action::ManageMembers, &acme, &mfa()),
        &["role:admin"],
    );
    let project_admin = user(Role::Admin);
    denied_by(
        &authz.authorize(&project_admin, Action::ManageMembers, &acme, &mfa()),
        &["forbid:other_project"],
    );
    let project_auditor = user(Role::Auditor);
    assert!(
        !authz
            .authorize(&project_auditor, Action::ReadAudit, &acme, &mfa())
            .allowed
    );
    allowed_by(
        &authz.authorize(&project_auditor, Action::ReadAudit, &p1(), &mfa()),
        &["role:auditor"],
    );
}

#[test]
fn principals_without_grants_are_denied_by_default() {
    let authz = Authorizer::new();
    for kind in [PrincipalKind::User, PrincipalKind::Token] {
        let nobody = principal(kind, "acme", None, None);
        for action in Action::ALL {
            denied_by_any(&authz.authorize(&nobody, action, &p1(), &mfa()));
        }
    }
}

fn denied_by_any(d: &Decision) {
    assert!(!d.allowed, "{d:?}");
    assert!(d.errors.is_empty(), "{d:?}");
}

#[test]
fn authorizer_is_shared_across_threads_while_policies_change() {
    let authz = Arc::new(Authorizer::new());
    let writer = {
        let authz = Arc::clone(&authz);
        std::thread::spawn(move || {
            for i in 0..50 {
                let text = if i % 2 == 0 {
                    r#"forbid (principal, action == Action::"export", resource);"#
                } else {
                    ""
                };
                authz.set_org_policies("acme", text).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let authz = Arc::clone(&authz);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let d =
                        authz.authorize(&user(Role::Analyst), Action::QuerySql, &p1(), &no_mfa());
                    assert!(d.allowed, "{d:?}");
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}
