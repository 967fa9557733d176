//! The incident Minim exists to prevent, acted out against the real server: a phished
//! `analyst` session tries to (a) list users with their emails, (d) bulk-export raw
//! events, (c) `SELECT *`, (b) page through every raw event. Each attempt is refused or
//! stopped at its budget, no personal value leaves, repeated trips suspend the session's
//! principal, an admin sees the alerts, and the audit log holds every attempt and
//! verifies. Also: the two-person rule for a large export, and login lockout.

use crate::common::{Auth, TestServer};
use minim_meta::{MetaStore, Role};
use minim_server::SecurityConfig;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn setup() -> TestServer {
    let s = TestServer::start_security(SecurityConfig {
        small_export_events: 50,
        ..SecurityConfig::default()
    })
    .await;
    // The plan declares `email` personal: stored (the app needs it), never shown
    // without read_personal.
    s.meta
        .set_tracking_plan(
            &s.project,
            r#"{"mode": "permissive", "properties": {"email": {"type": "string", "class": "personal"}}}"#,
            0,
        )
        .unwrap();
    // Tight budgets so the test runs fast: 300 raw events an hour, suspend on the 2nd trip.
    s.meta
        .set_org_settings(
            "default",
            &json!({"budgets": {"analyst": {
                "limits": [
                    {"meter": "rows", "window_ms": 86_400_000, "max": 100_000},
                    {"meter": "raw_events", "window_ms": 3_600_000, "max": 300},
                    {"meter": "distinct_users", "window_ms": 86_400_000, "max": 1_000}
                ],
                "trips_to_suspend": 2,
                "trip_window_ms": 86_400_000
            }}})
            .to_string(),
            0,
        )
        .unwrap();
    let events: Vec<Value> = (0..400)
        .map(|i| {
            json!({
                "event": if i % 2 == 0 { "view" } else { "signup" },
                "distinct_id": format!("customer-{}", i % 50),
                "timestamp": format!("2026-01-05T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "insert_id": format!("ins-{i}"),
                "properties": {"email": format!("victim{}@corp.example", i % 50), "plan": "pro"}
            })
        })
        .collect();
    let r = s
        .client
        .post(format!("{}/api/v1/events", s.url))
        .bearer_auth(&s.ingest_key)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn phished_analyst_session_cannot_exfiltrate_and_leaves_a_verified_trail() {
    let s = setup().await;
    let analyst_id = s.user("mallory.victim@corp.example", Role::Analyst, PASSWORD);
    let session = s
        .login("mallory.victim@corp.example", PASSWORD, None)
        .await
        .unwrap();
    let auth = Auth::Session(&session);
    let query = format!("/api/v1/projects/{}/query", s.project);
    let sql = format!("/api/v1/projects/{}/sql", s.project);
    let mut bodies: Vec<String> = Vec::new();

    // (a) Users with their emails: the live events view shows them redacted ...
    let (st, body) = s
        .call(
            "POST",
            &query,
            &auth,
            Some(json!({"kind": "events", "from": "2026-01-05", "to": "2026-01-05", "limit": 20})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("[redacted]"), "{body}");
    bodies.push(body);
    // ... a breakdown or filter on the email is refused ...
    for spec in [
        json!({"kind": "trends", "from": "2026-01-05", "to": "2026-01-05",
               "series": [{"event": "view"}], "breakdown": "email"}),
        json!({"kind": "events", "from": "2026-01-05", "to": "2026-01-05",
               "filters": [{"property": "email", "op": "contains", "value": "victim1"}]}),
    ] {
        let (st, body) = s.call("POST", &query, &auth, Some(spec)).await;
        assert_eq!(
            (st, code(&body).as_str()),
            (403, "personal_property"),
            "{body}"
        );
        bodies.push(body);
    }
    // ... and SQL reads the property as redacted.
    let (st, body) = s
        .call(
            "POST",
            &sql,
            &auth,
            Some(json!({"sql": "SELECT DISTINCT prop_str(properties, 'email') AS e FROM events"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("[redacted]"), "{body}");
    bodies.push(body);

    // (d) A bulk export: over the small-export size it needs a step-up the analyst
    // cannot give (no second factor) and a second admin.
    let exports = format!("/api/v1/projects/{}/exports", s.project);
    let (st, body) = s
        .call(
            "POST",
            &exports,
            &auth,
            Some(json!({"from": "2026-01-01", "to": "2026-01-31"})),
        )
        .await;
    assert_eq!(
        (st, code(&body).as_str()),
        (403, "step_up_required"),
        "{body}"
    );
    bodies.push(body);
    // With an analyst API token instead: refused outright.
    let token = s.token(Role::Analyst);
    let (st, body) = s
        .call(
            "POST",
            &exports,
            &Auth::Bearer(&token),
            Some(json!({"from": "2026-01-01", "to": "2026-01-31"})),
        )
        .await;
    assert_eq!(
        (st, code(&body).as_str()),
        (403, "export_needs_approval"),
        "{body}"
    );
    bodies.push(body);

    // (c) SELECT * : 400 rows would cross the 300 raw-event budget, so nothing comes back.
    let (st, body) = s
        .call(
            "POST",
            &sql,
            &auth,
            Some(json!({"sql": "SELECT * FROM events"})),
        )
        .await;
    assert_eq!(
        (st, code(&body).as_str()),
        (429, "budget_exceeded"),
        "{body}"
    );
    bodies.push(body);

    // (b) Paging through all raw events: stopped at the budget, before the end.
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let stopped = loop {
        let mut spec =
            json!({"kind": "events", "from": "2026-01-05", "to": "2026-01-05", "limit": 100});
        if let Some(c) = &cursor {
            spec["cursor"] = c.clone().into();
        }
        let (st, body) = s.call("POST", &query, &auth, Some(spec)).await;
        if st != 200 {
            bodies.push(body.clone());
            break (st, code(&body));
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        seen += v["events"].as_array().unwrap().len();
        bodies.push(body);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => panic!("paged through every event ({seen}) without hitting the budget"),
        }
    };
    assert_eq!(stopped, (429, "budget_exceeded".to_owned()));
    assert!(seen <= 300, "returned {seen} raw events past a 300 budget");

    // The second trip suspended the principal: even an aggregate is refused now.
    let (st, body) = s
        .call("POST", &query, &auth, Some(json!({"kind": "trends", "from": "2026-01-05", "to": "2026-01-05", "series": [{"event": "view"}]})))
        .await;
    assert_eq!(
        (st, code(&body).as_str()),
        (403, "principal_suspended"),
        "{body}"
    );
    bodies.push(body);

    // No personal value left the server in any answer.
    for b in &bodies {
        assert!(!b.contains("@corp.example"), "personal value leaked: {b}");
        assert!(!b.contains("customer-"), "original distinct_id leaked: {b}");
    }

    // An admin (with a second factor) sees the alerts and restores the principal.
    let admin_id = s.user("admin@corp.example", Role::Admin, PASSWORD);
    let seed = s.enroll_mfa(&admin_id);
    let admin = s
        .login("admin@corp.example", PASSWORD, Some(&seed))
        .await
        .unwrap();
    let (st, body) = s
        .call("GET", "/api/v1/org/alerts", &Auth::Session(&admin), None)
        .await;
    assert_eq!(st, 200, "{body}");
    let alerts: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["principal"] == analyst_id.as_str())
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"budget_exceeded"), "{kinds:?}");
    assert!(kinds.contains(&"principal_suspended"), "{kinds:?}");
    let (st, body) = s
        .call(
            "POST",
            &format!("/api/v1/org/suspensions/{analyst_id}/restore"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = s
        .call("POST", &query, &auth, Some(json!({"kind": "trends", "from": "2026-01-05", "to": "2026-01-05", "series": [{"event": "view"}]})))
        .await;
    assert_eq!(st, 200, "restored");

    // The audit log holds every attempt, readable by an auditor, and verifies.
    let auditor = s.token(Role::Auditor);
    let (st, body) = s
        .call(
            "GET",
            &format!("/api/v1/audit?principal={analyst_id}&limit=1000"),
            &Auth::Bearer(&auditor),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let records: Value = serde_json::from_str(&body).unwrap();
    let records = records["records"].as_array().unwrap();
    // The auditor token is bound to the project: it reads that project's records. The
    // admin (an organization-wide person) reads the whole trail, logins included.
    assert!(
        records
            .iter()
            .all(|r| r["resource"] == format!("project:{}", s.project).as_str())
    );
    let (st, body) = s
        .call(
            "GET",
            &format!("/api/v1/audit?principal={analyst_id}&limit=1000"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let records: Value = serde_json::from_str(&body).unwrap();
    let records = records["records"].as_array().unwrap();
    let has = |action: &str, status: u64| {
        records
            .iter()
            .any(|r| r["action"] == action && r["status"] == status)
    };
    assert!(has("login", 200));
    assert!(has("query_raw_events", 200));
    assert!(
        has("query_aggregate", 403),
        "the personal breakdown attempt"
    );
    assert!(has("export", 403), "the export attempt");
    assert!(has("query_sql", 429), "SELECT *");
    assert!(has("query_raw_events", 429), "the last page");
    assert!(has("budget_trip", 429));
    assert!(has("suspend", 429));
    assert!(has("query_aggregate", 200), "after the restore");
    for r in records {
        assert!(
            r["client_ip_hash"].as_str().is_some_and(|h| h.len() == 32),
            "{r}"
        );
        let text = r.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("@corp.example"),
            "{text}"
        );
    }
    let report = s.verify_audit();
    assert!(report.ok, "{:?}", report.first_bad);
    assert!(report.records as usize >= records.len());
    s.stop().await;
}

#[tokio::test]
async fn large_export_needs_step_up_and_a_second_admin() {
    let s = setup().await;
    let a = s.user("alice@corp.example", Role::Admin, PASSWORD);
    let b = s.user("bob@corp.example", Role::Admin, PASSWORD);
    let (sa, sb) = (s.enroll_mfa(&a), s.enroll_mfa(&b));
    let alice = s
        .login("alice@corp.example", PASSWORD, Some(&sa))
        .await
        .unwrap();
    let exports = format!("/api/v1/projects/{}/exports", s.project);
    let (st, body) = s
        .call(
            "POST",
            &exports,
            &Auth::Session(&alice),
            Some(json!({"from": "2026-01-01", "to": "2026-01-31"})),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["export_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not downloadable before approval; the requester cannot approve her own export.
    let dl = format!("{exports}/{id}/download");
    let (st, body) = s.call("GET", &dl, &Auth::Session(&alice), None).await;
    assert_eq!((st, code(&body).as_str()), (409, "export_not_approved"));
    let (st, body) = s
        .call(
            "POST",
            &format!("{exports}/{id}/approve"),
            &Auth::Session(&alice),
            None,
        )
        .await;
    assert_eq!((st, code(&body).as_str()), (403, "self_approval"));
    // An admin token cannot approve (approval needs a person with fresh MFA).
    let admin_token = s.token(Role::Admin);
    let (st, _) = s
        .call(
            "POST",
            &format!("{exports}/{id}/approve"),
            &Auth::Bearer(&admin_token),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let bob = s
        .login("bob@corp.example", PASSWORD, Some(&sb))
        .await
        .unwrap();
    let (st, body) = s
        .call(
            "POST",
            &format!("{exports}/{id}/approve"),
            &Auth::Session(&bob),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.call("GET", &dl, &Auth::Session(&alice), None).await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 400);
    assert!(
        !body.contains("@corp.example"),
        "admins without read_personal see redacted values"
    );
    let (st, _) = s.call("GET", &dl, &Auth::Session(&alice), None).await;
    assert_eq!(st, 409, "downloaded once");
    assert!(s.verify_audit().ok);
    s.stop().await;
}

#[tokio::test]
async fn login_brute_force_hits_the_lockout_and_admins_need_mfa() {
    let s = TestServer::start().await;
    s.user("target@corp.example", Role::Analyst, PASSWORD);
    for _ in 0..5 {
        let e = s
            .login("target@corp.example", "wrong password!!", None)
            .await
            .unwrap_err();
        assert_eq!(e.0, 401);
    }
    let e = s
        .login("target@corp.example", PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        (429, "login_locked".to_owned()),
        "locked even with the right password"
    );

    // An admin without a second factor can log in only to enroll one.
    s.user("newadmin@corp.example", Role::Admin, PASSWORD);
    let admin = s
        .login("newadmin@corp.example", PASSWORD, None)
        .await
        .unwrap();
    assert!(admin.set_cookie.starts_with("__Host-minim_session="));
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(admin.set_cookie.contains(attr), "{}", admin.set_cookie);
    }
    let q = format!("/api/v1/projects/{}/query", s.project);
    let spec = json!({"kind": "trends", "from": "2026-01-05", "to": "2026-01-05", "series": [{"event": "view"}]});
    let (st, body) = s
        .call("POST", &q, &Auth::Session(&admin), Some(spec.clone()))
        .await;
    assert_eq!((st, code(&body).as_str()), (403, "mfa_enrollment_required"));
    // A cookie write without the CSRF token is refused.
    let no_csrf = crate::common::Session {
        csrf: String::new(),
        ..admin.clone()
    };
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/auth/mfa/enroll",
            &Auth::Session(&no_csrf),
            None,
        )
        .await;
    assert_eq!((st, code(&body).as_str()), (403, "csrf_failed"));
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/auth/mfa/enroll",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let secret = serde_json::from_str::<Value>(&body).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = minim_auth::totp::TotpSecret::from_base32(&secret).unwrap();
    let now = minim_core::time::Clock::system().now_ms() / 1000;
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/auth/mfa/confirm",
            &Auth::Session(&admin),
            Some(json!({"code": minim_auth::totp::code_at(&secret, now)})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["recovery_codes"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let (st, body) = s
        .call("POST", &q, &Auth::Session(&admin), Some(spec.clone()))
        .await;
    assert_eq!(st, 200, "{body}");
    // Logout revokes the session.
    let (st, _) = s
        .call("POST", "/api/v1/auth/logout", &Auth::Session(&admin), None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.call("POST", &q, &Auth::Session(&admin), Some(spec)).await;
    assert_eq!(st, 401);
    assert!(s.verify_audit().ok);
    s.stop().await;
}
