//! The authorization matrix: every audited route of the router (read from `routes.rs`,
//! so a new route without a row fails here) against every role's API token, checked
//! against `data/authz_matrix.txt`. Then every route with an expired, a revoked and
//! another project's token, and with none: refused, always.

use std::collections::BTreeSet;

use crate::common::{Auth, TestServer};
use minim_meta::{MetaStore, Role};
use serde_json::{Value, json};

struct Row {
    method: String,
    path: String,
    body: String,
    expect: [String; 4],
}

fn table() -> Vec<Row> {
    let text = include_str!("../data/authz_matrix.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 8, "bad row: {l}");
            Row {
                method: f[0].into(),
                path: f[1].into(),
                body: f[2].into(),
                expect: [f[4].into(), f[5].into(), f[6].into(), f[7].into()],
            }
        })
        .collect()
}

/// (METHOD, path with `{p}`/`{x}`) of every route in the audited router.
fn routes_in_router() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/routes.rs");
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        if !path.starts_with("/api/v1") || path == "/api/v1/events" {
            continue;
        }
        let path = path
            .replace("{project_id}", "{p}")
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') && seg != "{p}" {
                    "{x}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (needle, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
        ] {
            if chunk.contains(needle) {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn body(name: &str) -> Option<Value> {
    Some(match name {
        "none" => return None,
        "trends" => {
            json!({"kind": "trends", "from": "2026-01-05", "to": "2026-01-05", "series": [{"event": "view"}]})
        }
        "events" => json!({"kind": "events", "from": "2026-01-05", "to": "2026-01-05", "limit": 5}),
        "sql" => json!({"sql": "SELECT count(*) AS n FROM events"}),
        "plan" => json!({"mode": "permissive"}),
        "subject" => json!({"distinct_id": "nobody"}),
        "export" => json!({"from": "2026-01-01", "to": "2026-01-02"}),
        "token" => json!({"role": "viewer", "ttl": "1h"}),
        "member" => {
            json!({"email": "new@corp.example", "role": "viewer", "password": "long enough password"})
        }
        "membership" => json!({"role": "viewer"}),
        "settings" => json!({}),
        "code" => json!({"code": "000000"}),
        "login" => json!({"email": "nobody@corp.example", "password": "whatever password"}),
        other => panic!("unknown body {other}"),
    })
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test]
async fn every_route_and_role_matches_the_matrix_and_bad_tokens_are_refused() {
    let s = TestServer::start().await;
    let rows = table();
    let listed: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        listed,
        routes_in_router(),
        "the matrix must list exactly the router's routes"
    );

    let roles = [Role::Viewer, Role::Analyst, Role::Admin, Role::Auditor];
    let tokens: Vec<String> = roles.iter().map(|r| s.token(*r)).collect();
    let mut failures = Vec::new();
    for row in &rows {
        let path = row
            .path
            .replace("{p}", s.project.as_str())
            .replace("{x}", "x_doesnotexist");
        for (i, role) in roles.iter().enumerate() {
            let (st, text) = s
                .call(
                    &row.method,
                    &path,
                    &Auth::Bearer(&tokens[i]),
                    body(&row.body),
                )
                .await;
            let ok = match row.expect[i].as_str() {
                "allow" => st != 401 && st != 403 && code(&text) != "session_required",
                "deny" => st == 403,
                "session" => st == 400 && code(&text) == "session_required",
                "public" => st != 403,
                other => panic!("unknown expectation {other}"),
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {}: expected {}, got {st} {text}",
                    row.method,
                    row.path,
                    role.as_str(),
                    row.expect[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Expired, revoked and other-project tokens, and no credential: refused everywhere.
    let now = minim_core::time::Clock::system().now_ms();
    let expired = s
        .meta
        .create_token(&s.project, Role::Admin, 1, now)
        .unwrap()
        .token;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let revoked = s.revoked_token();
    let other = s.other_project_token();
    for row in rows.iter().filter(|r| r.expect[0] != "public") {
        let path = row
            .path
            .replace("{p}", s.project.as_str())
            .replace("{x}", "x_doesnotexist");
        for (name, auth) in [
            ("expired", Auth::Bearer(&expired)),
            ("revoked", Auth::Bearer(&revoked)),
            ("none", Auth::None),
        ] {
            let (st, text) = s.call(&row.method, &path, &auth, body(&row.body)).await;
            assert_eq!(
                st, 401,
                "{} {} with a {name} token: {text}",
                row.method, row.path
            );
        }
        let (st, text) = s
            .call(&row.method, &path, &Auth::Bearer(&other), body(&row.body))
            .await;
        let refused = st == 403 || (row.expect[0] == "session" && st == 400);
        let own_scope = row.path.starts_with("/api/v1/auth/budget");
        assert!(
            refused || own_scope,
            "{} {} with another project's token: {st} {text}",
            row.method,
            row.path
        );
    }
    assert!(s.verify_audit().ok);
    s.stop().await;
}
