//! The role matrix: every built-in role x every action x every scope, as data in
//! `tests/data/role_matrix.csv`, checked against the authorizer (and for coverage).

use std::collections::{BTreeSet, HashSet};

use minim_auth::policy::{Authorizer, role_actions};
use minim_auth::{Action, Context, Grants, Principal, PrincipalKind, Resource, Role};

const MATRIX: &str = include_str!("data/role_matrix.csv");

const SCOPES: [&str; 7] = [
    "own_project",
    "other_project",
    "other_org",
    "org",
    "org_wide_project",
    "org_wide_org",
    "org_wide_other_org",
];

struct Row {
    line: usize,
    role: Role,
    action: Action,
    scope: &'static str,
    allowed: bool,
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, line) in MATRIX.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            assert_eq!(line, "role,action,scope,expected", "line {line_no}: header");
            header_seen = true;
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "line {line_no}: {line}");
        let role = Role::ALL
            .into_iter()
            .find(|r| r.as_str() == fields[0])
            .unwrap_or_else(|| panic!("line {line_no}: unknown role {:?}", fields[0]));
        let action = Action::parse(fields[1])
            .unwrap_or_else(|| panic!("line {line_no}: unknown action {:?}", fields[1]));
        let scope = SCOPES
            .into_iter()
            .find(|s| *s == fields[2])
            .unwrap_or_else(|| panic!("line {line_no}: unknown scope {:?}", fields[2]));
        let allowed = match fields[3] {
            "allow" => true,
            "deny" => false,
            other => panic!("line {line_no}: expected allow or deny, got {other:?}"),
        };
        rows.push(Row {
            line: line_no,
            role,
            action,
            scope,
            allowed,
        });
    }
    rows
}

/// The principal and resource a scope stands for (see the comment in the CSV).
fn case(role: Role, scope: &str) -> (Principal, Resource) {
    let project_grant = matches!(scope, "own_project" | "other_project" | "other_org" | "org");
    let principal = Principal {
        id: "usr_matrix".into(),
        kind: PrincipalKind::User,
        org: "acme".into(),
        grants: Grants {
            role: Some(role),
            permissions: BTreeSet::new(),
            project: project_grant.then(|| "p1".to_string()),
        },
        suspended: false,
    };
    let project = |id: &str, org: &str| Resource::Project {
        id: id.into(),
        org: org.into(),
    };
    let resource = match scope {
        "own_project" => project("p1", "acme"),
        "other_project" | "org_wide_project" => project("p2", "acme"),
        "other_org" | "org_wide_other_org" => project("p9", "beta"),
        "org" | "org_wide_org" => Resource::Org { id: "acme".into() },
        other => unreachable!("scope {other}"),
    };
    (principal, resource)
}

#[test]
fn role_matrix_covers_every_role_action_and_scope_once() {
    let rows = rows();
    let mut seen = HashSet::new();
    for row in &rows {
        assert!(
            seen.insert((row.role, row.action, row.scope)),
            "line {}: duplicate row",
            row.line
        );
    }
    for role in Role::ALL {
        for action in Action::ALL {
            for scope in SCOPES {
                assert!(
                    seen.contains(&(role, action, scope)),
                    "missing row {},{},{}",
                    role.as_str(),
                    action.as_str(),
                    scope
                );
            }
        }
    }
    assert_eq!(
        rows.len(),
        Role::ALL.len() * Action::ALL.len() * SCOPES.len()
    );
}

#[test]
fn role_matrix_decisions() {
    let authorizer = Authorizer::new();
    let ctx = Context {
        mfa_fresh: true,
        mfa_enrolled: true,
        ip: None,
    };
    let mut failures = Vec::new();
    for row in rows() {
        let (principal, resource) = case(row.role, row.scope);
        let decision = authorizer.authorize(&principal, row.action, &resource, &ctx);
        assert!(
            decision.errors.is_empty(),
            "line {}: {:?}",
            row.line,
            decision.errors
        );
        if decision.allowed != row.allowed {
            failures.push(format!(
                "line {}: {},{},{} expected {} got {:?}",
                row.line,
                row.role.as_str(),
                row.action.as_str(),
                row.scope,
                if row.allowed { "allow" } else { "deny" },
                decision
            ));
        }
        if decision.allowed {
            assert_eq!(
                decision.policies,
                vec![format!("role:{}", row.role.as_str())],
                "line {}",
                row.line
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The table and `role_actions` (read from the templates) say the same thing.
#[test]
fn role_matrix_agrees_with_role_actions() {
    for row in rows().iter().filter(|r| r.scope == "own_project") {
        assert_eq!(
            role_actions(row.role).contains(&row.action),
            row.allowed,
            "line {}",
            row.line
        );
    }
}
