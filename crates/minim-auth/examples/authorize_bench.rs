//! Time per `Authorizer::authorize` call on a few typical requests (with and without a
//! role link, with organization policies installed). Prints numbers; asserts nothing.
//! Run: `cargo run --release -p minim-auth --example authorize_bench`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

use minim_auth::policy::Authorizer;
use minim_auth::{Action, Context, Grants, Principal, PrincipalKind, Resource, Role};

const ORG_POLICIES: &str = r#"
@id("viewers-run-sql")
permit (principal, action == Action::"query_sql", resource)
when { principal has role && principal.role == "viewer" };

@id("no-sql-for-tokens")
forbid (principal is Token, action == Action::"query_sql", resource);

@id("office-only-exports")
forbid (principal, action == Action::"export", resource)
unless { context has ip && context.ip.isInRange(ip("10.0.0.0/8")) };
"#;

fn main() {
    let authz = Authorizer::new();
    authz
        .set_org_policies("acme", ORG_POLICIES)
        .expect("bench policies are valid");
    let project = Resource::Project {
        id: "prj_1".into(),
        org: "acme".into(),
    };
    let ctx = Context {
        mfa_fresh: true,
        mfa_enrolled: true,
        ip: Some("10.1.2.3".parse().expect("valid ip")),
    };
    let member = |org: &str, role: Option<Role>, kind: PrincipalKind, perms: &[Action]| Principal {
        id: "usr_0123456789".into(),
        kind,
        org: org.into(),
        grants: Grants {
            role,
            permissions: perms.iter().copied().collect::<BTreeSet<_>>(),
            project: Some("prj_1".into()),
        },
        suspended: false,
    };
    let cases = [
        (
            "analyst user, query_sql, org policies (role link)",
            member("acme", Some(Role::Analyst), PrincipalKind::User, &[]),
            Action::QuerySql,
        ),
        (
            "analyst user, query_sql, no org policies (role link)",
            member("beta", Some(Role::Analyst), PrincipalKind::User, &[]),
            Action::QuerySql,
        ),
        (
            "token with permission list, export (no link)",
            member(
                "acme",
                None,
                PrincipalKind::Token,
                &[Action::QueryAggregate, Action::Export],
            ),
            Action::Export,
        ),
        (
            "ingest key, ingest (no link)",
            Principal {
                id: "prj_1".into(),
                kind: PrincipalKind::IngestKey,
                org: "acme".into(),
                grants: Grants::default(),
                suspended: false,
            },
            Action::Ingest,
        ),
    ];
    const CALLS: u32 = 50_000;
    for (name, principal, action) in &cases {
        let resource = match principal.org.as_str() {
            "beta" => Resource::Project {
                id: "prj_1".into(),
                org: "beta".into(),
            },
            _ => project.clone(),
        };
        let first = authz.authorize(principal, *action, &resource, &ctx);
        for _ in 0..1_000 {
            black_box(authz.authorize(principal, *action, &resource, &ctx));
        }
        let start = Instant::now();
        for _ in 0..CALLS {
            black_box(authz.authorize(black_box(principal), *action, &resource, &ctx));
        }
        let per_call = start.elapsed() / CALLS;
        println!(
            "{name}: {:.1} µs/call (allowed={}, by {:?})",
            per_call.as_nanos() as f64 / 1000.0,
            first.allowed,
            first.policies
        );
    }
}
