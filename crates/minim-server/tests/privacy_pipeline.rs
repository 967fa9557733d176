//! The privacy pipeline through the real server: a corpus with known PII planted in
//! property values, URLs, referrers, property names, ids and the client context; after
//! ingest, flush and compaction, no byte under the data directory (WAL, segments,
//! manifest, metadata database) holds any planted string or the client IP. Also: geo
//! from a trusted proxy's X-Forwarded-For, strict and learn plans, counters, subject
//! export and erasure verified by a query.

mod common;

use std::path::Path;

use common::TestServer;
use minim_meta::{MetaStore, Role};
use minim_privacy::pipeline::PrivacyConfig;
use minim_server::ServerConfig;
use minim_store::StoreConfig;
use serde_json::{Value, json};

/// The MaxMind test database (project root's `../shared/testdata/geo`).
fn geo_db() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/geo/GeoLite2-Country-Test.mmdb")
}

/// An address the test database places in GB.
const CLIENT_IP: &str = "81.2.69.142";
const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 PlantedUA/7.7";

/// Every string that must never reach disk, and the events that carry them.
fn corpus(n: usize) -> (Vec<String>, Vec<Value>) {
    let mut planted = Vec::new();
    let mut events = Vec::new();
    for i in 0..n {
        let email = format!("planted.person{i}@example.org");
        let phone = format!("+44 20 7946 {:04}", 1000 + i);
        let card = luhn_card(i);
        let ssn = format!("{:03}-{:02}-{:04}", 123 + i % 500, 45, 6789 - i % 1000);
        let aws = format!("AKIA{:016}", 1_000_000_000_000_000u64 + i as u64)
            .replace('0', "Q")
            .replace('1', "Z");
        let user = format!("planted-user-{i:05}");
        let secret_value = format!("hunter2-planted-{i}");
        let name_email = format!("name.key{i}@example.net");
        let url_email = format!("url.person{i}@example.com");
        let encoded_email = format!("enc.person{i}%40example.com");
        let search = format!("plantedsearchterm{i}");
        events.push(json!({
            "event": "page_view",
            "distinct_id": user,
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {
                "plan": "pro",
                "note": format!("call me at {phone} or mail {email}"),
                "payment": {"card": card, "kept": "yes"},
                "ssn_field": format!("ssn {ssn}"),
                "cloud": aws,
                "password": secret_value,
                name_email.clone(): 1,
                "$current_url": format!("https://shop.example/u/{url_email}/cart?q={search}&utm_source=news#frag-planted{i}"),
                "$referrer": format!("https://www.google.com/search?q={search}x"),
                "tags": [format!("t{i}"), email.clone()],
                "link": format!("https://example.org/x?ok=1&e={encoded_email}"),
                "$ip": CLIENT_IP,
                "$raw_user_agent": UA,
            }
        }));
        planted.extend([
            email,
            phone,
            card,
            ssn,
            aws,
            user,
            secret_value,
            name_email,
            url_email,
            format!("enc.person{i}"),
            search.clone(),
            format!("frag-planted{i}"),
        ]);
    }
    planted.push(CLIENT_IP.to_owned());
    planted.push("PlantedUA".to_owned());
    (planted, events)
}

/// A 16-digit Visa number passing Luhn, different per `i`.
fn luhn_card(i: usize) -> String {
    let body = format!("4{:014}", 53_201_511_283_036u64 + i as u64 * 7919);
    let digits: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
    let mut sum = 0;
    for (k, d) in digits.iter().rev().enumerate() {
        let mut d = *d;
        if k % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Planted strings found in any file under `dir` (raw bytes) or in `stored` events.
fn leaks(dir: &Path, stored: &[minim_core::Event], planted: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut found = Vec::new();
    for f in &all {
        let bytes = std::fs::read(f).unwrap_or_default();
        for s in planted {
            if memfind(&bytes, s.as_bytes()) {
                found.push(format!("{s} in {}", f.display()));
            }
        }
    }
    // Parquet pages are compressed: look at the decoded events as well.
    for e in stored {
        let text = format!(
            "{} {} {:?} {}",
            e.event, e.distinct_id, e.insert_id, e.properties
        );
        for s in planted {
            if text.contains(s.as_str()) {
                found.push(format!("{s} in a stored event"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn start() -> TestServer {
    TestServer::start_privacy(
        StoreConfig::default(),
        ServerConfig::default(),
        PrivacyConfig {
            geoip_path: Some(geo_db()),
            trusted_proxies: vec!["127.0.0.1/32".into()],
            ..PrivacyConfig::default()
        },
    )
    .await
}

async fn ingest(server: &TestServer, events: &[Value], ua: &str) -> Value {
    let r = server
        .client
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(&server.ingest_key)
        .header("x-forwarded-for", format!("10.9.9.9, {CLIENT_IP}"))
        .header("user-agent", ua)
        .json(events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_pii_never_reaches_disk() {
    let server = start().await;
    let (planted, events) = corpus(40);
    let body = ingest(&server, &events[..20], "curl/8.0").await;
    assert_eq!(body["accepted"], 20, "{body}");
    server.store.flush().unwrap();
    let body = ingest(&server, &events[20..], "curl/8.0").await;
    assert_eq!(body["accepted"], 20, "{body}");
    server.store.flush().unwrap();
    server.store.compact_now().unwrap();
    // And some still only in the WAL and memtable.
    let (_, more) = corpus(45);
    ingest(&server, &more[40..], "curl/8.0").await;

    let stored = server.stored_events();
    assert_eq!(stored.len(), 45);
    let e: Value = serde_json::from_str(&stored[0].properties).unwrap();
    // What survives: the non-PII parts, the enrichment, the cleaned URL.
    assert_eq!(e["plan"], "pro");
    assert_eq!(e["payment"]["kept"], "yes");
    assert!(e["payment"].get("card").is_none(), "{e}");
    assert!(e.get("password").is_none() && e.get("$ip").is_none(), "{e}");
    assert_eq!(e["$geo_country"], "GB", "{e}");
    assert_eq!(e["$browser"], "Chrome", "{e}");
    let url = e["$current_url"].as_str().unwrap();
    assert!(
        url.contains("utm_source=news") && !url.contains('#'),
        "{url}"
    );
    assert_eq!(e["$referrer"], "https://www.google.com");
    assert!(
        e["note"].as_str().unwrap().contains("[redacted:email]"),
        "{e}"
    );
    assert_eq!(stored[0].distinct_id.len(), 32);

    // Counters say what happened, without values.
    let admin = server.token(Role::Admin);
    let stats: Value = server
        .client
        .get(format!(
            "{}/api/v1/projects/{}/privacy/stats",
            server.url, server.project
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["received"], 45, "{stats}");
    assert_eq!(stats["accepted"], 45, "{stats}");
    assert!(
        stats["values_scrubbed"]["email"].as_u64().unwrap() >= 45,
        "{stats}"
    );
    assert_eq!(stats["properties_dropped"]["secret_name"], 45, "{stats}");
    assert_eq!(stats["properties_dropped"]["pii_card"], 45, "{stats}");

    let found = leaks(server.dir.path(), &stored, &planted);
    assert!(found.is_empty(), "planted PII on disk: {found:#?}");
    // After shutdown (final flush) too.
    let project = server.project.clone();
    let dir = server.stop_keeping_dir().await;
    let store = minim_store::Store::open(StoreConfig {
        data_dir: dir.path().join("events"),
        ..StoreConfig::default()
    })
    .unwrap();
    let stored = store.snapshot().events(&project).unwrap();
    assert_eq!(stored.len(), 45);
    let found = leaks(dir.path(), &stored, &planted);
    assert!(found.is_empty(), "planted PII on disk: {found:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_are_dropped_and_strict_plans_keep_only_what_they_declare() {
    let server = start().await;
    let admin = server.token(Role::Admin);
    let ev = |name: &str| json!({"event": name, "distinct_id": "u1", "properties": {"plan": "pro", "extra": 1, "amount": "42"}});
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let body = ingest(&server, &[ev("view")], googlebot).await;
    assert_eq!(body["accepted"], 0, "{body}");
    assert_eq!(body["dropped"][0]["reason"], "bot", "{body}");

    let plan = json!({"mode": "strict",
        "events": {"view": {"properties": {"amount": {"type": "integer"}}}},
        "properties": {"plan": {"type": "string", "class": "public"}}});
    let r = server
        .client
        .put(format!(
            "{}/api/v1/projects/{}/plan",
            server.url, server.project
        ))
        .bearer_auth(&admin)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A plan error names the field.
    let r = server
        .client
        .put(format!(
            "{}/api/v1/projects/{}/plan",
            server.url, server.project
        ))
        .bearer_auth(&admin)
        .json(&json!({"mode": "strict", "events": {"view": {"retention_days": 0}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events.view.retention_days"),
        "{err}"
    );
    // An analyst may read the plan but not replace it.
    let analyst = server.token(Role::Analyst);
    let r = server
        .client
        .put(format!(
            "{}/api/v1/projects/{}/plan",
            server.url, server.project
        ))
        .bearer_auth(&analyst)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let body = ingest(&server, &[ev("view"), ev("undeclared")], UA).await;
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["dropped"][0]["index"], 1, "{body}");
    assert_eq!(body["dropped"][0]["reason"], "undeclared_event", "{body}");
    let stored = server.stored_events();
    let p: Value = serde_json::from_str(&stored[0].properties).unwrap();
    assert_eq!(p["plan"], "pro");
    assert_eq!(p["amount"], 42, "coerced losslessly: {p}");
    assert!(p.get("extra").is_none(), "{p}");

    // Learn mode keeps everything and suggests the new names.
    let plan = json!({"mode": "learn", "events": {"view": {}}});
    server
        .client
        .put(format!(
            "{}/api/v1/projects/{}/plan",
            server.url, server.project
        ))
        .bearer_auth(&admin)
        .json(&plan)
        .send()
        .await
        .unwrap();
    ingest(&server, &[ev("checkout")], UA).await;
    let s: Value = server
        .client
        .get(format!(
            "{}/api/v1/projects/{}/plan/suggestions",
            server.url, server.project
        ))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<(String, Value)> = s["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["event"].as_str().unwrap().to_owned(),
                x["property"].clone(),
            )
        })
        .collect();
    assert!(names.contains(&("checkout".into(), Value::Null)), "{s}");
    assert!(names.contains(&("checkout".into(), json!("extra"))), "{s}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookieless_visitors_and_subject_export_and_erasure() {
    let server = start().await;
    // Exporting a data subject's events needs read_personal (an explicit grant).
    let admin = server.token_with(Role::Admin, &["read_personal"]);
    // Cookieless: same IP and UA on one day = one visitor; another UA = another.
    let anon = |n: &str| json!({"event": n, "timestamp": "2026-01-05T10:00:00Z"});
    ingest(&server, &[anon("a"), anon("b")], UA).await;
    ingest(
        &server,
        &[anon("c")],
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    )
    .await;
    let ids: std::collections::BTreeSet<String> = server
        .stored_events()
        .into_iter()
        .map(|e| e.distinct_id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let mine = |n: &str, t: &str| json!({"event": n, "distinct_id": "erase-me-7", "timestamp": t, "properties": {"plan": "pro"}});
    let other =
        json!({"event": "view", "distinct_id": "keep-me", "timestamp": "2026-01-05T11:00:00Z"});
    ingest(
        &server,
        &[mine("view", "2026-01-04T10:00:00Z"), other.clone()],
        UA,
    )
    .await;
    server.store.flush().unwrap();
    ingest(&server, &[mine("buy", "2026-01-05T12:00:00Z")], UA).await;

    let url = |p: &str| format!("{}/api/v1/projects/{}/{p}", server.url, server.project);
    let export: Value = server
        .client
        .post(url("subjects/export"))
        .bearer_auth(&admin)
        .json(&json!({"distinct_id": "erase-me-7"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["events"].as_array().unwrap().len(), 2, "{export}");
    assert_eq!(export["pseudonym"], server.pseudonym("erase-me-7"));
    assert_eq!(export["events"][0]["event"], "buy");

    // Analysts may not run subject requests; an admin without read_personal may not
    // export one.
    let plain_admin = server.token(Role::Admin);
    let r = server
        .client
        .post(url("subjects/export"))
        .bearer_auth(&plain_admin)
        .json(&json!({"distinct_id": "erase-me-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let analyst = server.token(Role::Analyst);
    let r = server
        .client
        .post(url("subjects/erase"))
        .bearer_auth(&analyst)
        .json(&json!({"distinct_id": "erase-me-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let unique = || async {
        let q = json!({"kind": "trends", "from": "2026-01-04", "to": "2026-01-05", "interval": "day",
                       "series": [{"event": "view", "math": "unique_users"}, {"event": "buy", "math": "total"}]});
        let r: Value = server
            .client
            .post(url("query"))
            .bearer_auth(&analyst)
            .json(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            r["series"][0]["total"].clone(),
            r["series"][1]["total"].clone(),
        )
    };
    assert_eq!(unique().await, (json!(2), json!(1)));
    let r: Value = server
        .client
        .post(url("subjects/erase"))
        .bearer_auth(&admin)
        .json(&json!({"distinct_id": "erase-me-7"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["events_erased"], 2, "{r}");
    // Verified by a query afterwards.
    assert_eq!(unique().await, (json!(1), json!(0)));
    let pseudonym = server.pseudonym("erase-me-7");
    assert!(
        server
            .stored_events()
            .iter()
            .all(|e| e.distinct_id != pseudonym)
    );
    let log: Value = server
        .client
        .get(url("deletions"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["deletions"][0]["kind"], "erasure", "{log}");
    assert!(!log.to_string().contains("erase-me-7"), "{log}");
    let _ = server.meta.deletions(&server.project, 10).unwrap();
    server.stop().await;
}
