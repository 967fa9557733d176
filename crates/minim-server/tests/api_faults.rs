//! Backpressure and storage faults through the HTTP API: 503 with Retry-After, an
//! unready `/readyz`, nothing acknowledged that is not durable, and recovery.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use minim_store::StoreConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_failure_answers_503_and_recovers() {
    let cfg = StoreConfig::default();
    let faults = cfg.faults.clone();
    let server = TestServer::start_with(cfg).await;
    let post = |id: &str| {
        server
            .client
            .post(format!("{}/api/v1/events", server.url))
            .bearer_auth(&server.ingest_key)
            .json(&serde_json::json!([{"event": "e", "distinct_id": "u", "insert_id": id}]))
            .send()
    };
    assert_eq!(post("ok-1").await.unwrap().status(), 200);

    faults.set_fail_wal_sync(true);
    let r = post("during-fault").await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let ready = server
        .client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        server
            .client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    faults.set_fail_wal_sync(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server
            .client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never became ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        post("during-fault").await.unwrap().status(),
        200,
        "the retry is stored"
    );
    let ids: Vec<String> = server
        .stored_events()
        .into_iter()
        .filter_map(|e| e.insert_id)
        .collect();
    assert_eq!(ids.iter().filter(|i| *i == "during-fault").count(), 1);
    assert!(ids.contains(&"ok-1".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_ingest_memory_answers_503_with_retry_after() {
    let server = TestServer::start_with_server(minim_server::ServerConfig {
        ingest_memory_bytes: 1 << 20,
        ..Default::default()
    })
    .await;
    // 400 KB with 3x parse overhead does not fit a 1 MiB budget.
    let body = format!(
        "[{}]",
        vec![r#"{"event":"e","distinct_id":"u"}"#; 13_000].join(",")
    );
    let r = server
        .client
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(&server.ingest_key)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    assert!(server.stored_events().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with_server(minim_server::ServerConfig {
        body_read_timeout_ms: 300,
        ..Default::default()
    })
    .await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n[{{\"event\"",
        server.ingest_key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    server.stop().await;
}
