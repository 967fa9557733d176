//! End-to-end tests through the real `minim` binary where process behaviour matters:
//! `kill -9` at random moments while ingesting, SIGTERM, and a held data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use minim_crypto::Keyring;
use minim_store::{Encryption, Store, StoreConfig};
use rand::Rng;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_minim");

/// A temporary data directory; its keys directory (`<dir>.keys`) and audit signing key
/// (`<dir>.audit-key` and `.pub`), beside it as by default, are removed with it.
struct TestDir(tempfile::TempDir);

impl TestDir {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Keyring::default_dir(self.0.path()));
        for suffix in [".audit-key", ".audit-key.pub"] {
            let mut key = self.0.path().as_os_str().to_owned();
            key.push(suffix);
            let _ = std::fs::remove_file(key);
        }
    }
}

fn test_dir() -> TestDir {
    TestDir(tempfile::tempdir().unwrap())
}

/// Opens the event store of a data directory the way the binary does (encrypted, with
/// the keyring beside it), after the server has stopped.
fn open_store(dir: &Path) -> Store {
    open_store_with(dir, &Keyring::default_dir(dir)).unwrap()
}

/// Opens the event store of `data_dir` with the keyring in `keys_dir`.
fn open_store_with(data_dir: &Path, keys_dir: &Path) -> Result<Store, minim_store::StoreError> {
    let ring = Keyring::open(keys_dir, None).unwrap();
    Store::open(StoreConfig {
        data_dir: data_dir.join("events"),
        encryption: Some(Encryption::new(Arc::new(ring))),
        ..StoreConfig::default()
    })
}

fn minim(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir);
    // Small memtables and quick flushes/compactions so crashes land in every phase.
    c.env("MINIM_STORE__MEMTABLE_MAX_BYTES", "262144")
        .env("MINIM_STORE__FLUSH_INTERVAL_MS", "300")
        .env("MINIM_STORE__COMPACTION_INTERVAL_MS", "400")
        .env("MINIM_STORE__COMPACTION_MIN_SEGMENTS", "2")
        .env("MINIM_LOG", "warn");
    c
}

fn create_project(dir: &Path) -> String {
    let out = minim(dir)
        .args(["project", "create", "--name", "crash", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["ingest_key"].as_str().unwrap().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Server {
    let port = free_port();
    let child = minim(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, url }
}

fn event(id: u64) -> Value {
    serde_json::json!({
        "event": format!("e{}", id % 7),
        "distinct_id": format!("user-{}", id % 50),
        "insert_id": format!("id-{id}"),
        "properties": {"n": id, "pad": "x".repeat((id % 97) as usize)}
    })
}

/// Imports `yaml` as `project`'s tracking plan (the file is removed again).
fn import_plan(dir: &Path, project: &str, yaml: &str) {
    let plan = dir.join("plan.yaml");
    std::fs::write(&plan, yaml).unwrap();
    run_json(
        dir,
        &[
            "plan",
            "import",
            "--project",
            project,
            plan.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&plan).unwrap();
}

/// Posts the test events with these ids as one native batch.
async fn post(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    ids: &[u64],
) -> reqwest::Response {
    let body: Vec<Value> = ids.iter().map(|&i| event(i)).collect();
    client
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Opens the stored events after the server has stopped: insert_id -> count, and
/// checks every event is intact (its properties match what was sent).
fn stored(dir: &Path) -> BTreeMap<String, usize> {
    let store = open_store(dir);
    let snap = store.snapshot();
    let mut counts = BTreeMap::new();
    for p in snap.projects() {
        for e in snap.events(&p).unwrap() {
            let id = e
                .insert_id
                .clone()
                .expect("every test event has an insert_id");
            let n: u64 = id.trim_start_matches("id-").parse().unwrap();
            let props: Value = serde_json::from_str(&e.full_properties()).unwrap();
            assert_eq!(props, event(n)["properties"], "event {id} corrupted");
            assert_eq!(e.event, format!("e{}", n % 7));
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_no_acknowledged_event() {
    let dir = test_dir();
    let key = create_project(dir.path());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut unacked: Vec<Vec<u64>> = Vec::new();
    let mut next_id = 0u64;
    let mut rng = rand::rng();
    for round in 0..12 {
        let server = start(dir.path());
        let kill_after = Duration::from_millis(rng.random_range(150..900));
        let started = Instant::now();
        // Retry what was never acknowledged (as a real client would), then new batches.
        let mut pending: Vec<Vec<u64>> = std::mem::take(&mut unacked);
        let mut tasks = Vec::new();
        for worker in 0..3 {
            let client = client.clone();
            let url = format!("{}/api/v1/events", server.url);
            let key = key.clone();
            let mut mine: Vec<Vec<u64>> = pending.drain(..).filter(|_| worker == 0).collect();
            let base = next_id + worker * 1_000_000;
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                let mut failed = Vec::new();
                let mut local = 0u64;
                while started.elapsed() < kill_after + Duration::from_millis(300) {
                    let batch: Vec<u64> = match mine.pop() {
                        Some(b) => b,
                        None => {
                            let b: Vec<u64> = (0..50).map(|i| base + local + i).collect();
                            local += 50;
                            b
                        }
                    };
                    let body: Vec<Value> = batch.iter().map(|&i| event(i)).collect();
                    let res = client.post(&url).bearer_auth(&key).json(&body).send().await;
                    match res {
                        Ok(r) if r.status() == 200 => ok.push(batch),
                        _ => {
                            failed.push(batch);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                failed.extend(mine);
                (ok, failed)
            }));
        }
        tokio::time::sleep(kill_after).await;
        let mut server = server;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for t in tasks {
            let (ok, failed) = t.await.unwrap();
            for b in ok {
                acked.extend(b);
            }
            unacked.extend(failed);
        }
        next_id += 10_000_000;
        eprintln!(
            "round {round}: {} acknowledged so far, {} batches to retry",
            acked.len(),
            unacked.len()
        );
    }
    // A clean final run: retry the rest, then stop with SIGTERM.
    let mut server = start(dir.path());
    for b in unacked.drain(..) {
        // As a real client: 503 (overloaded or still recovering) means retry later.
        let mut status = post(&client, &server, &key, &b).await.status();
        for _ in 0..50 {
            if status != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            status = post(&client, &server, &key, &b).await.status();
        }
        assert_eq!(status, 200);
        acked.extend(b);
    }
    terminate(&mut server.child);
    let counts = stored(dir.path());
    assert!(
        acked.len() > 1000,
        "too little traffic to mean anything: {}",
        acked.len()
    );
    for id in &acked {
        assert_eq!(
            counts.get(&format!("id-{id}")),
            Some(&1),
            "acknowledged id-{id} missing or duplicated"
        );
    }
    assert!(counts.values().all(|&c| c == 1), "an event is stored twice");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id() as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_everything_and_exits_zero() {
    let dir = test_dir();
    let key = create_project(dir.path());
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let ids: Vec<u64> = (0..500).collect();
    assert_eq!(post(&client, &server, &key, &ids).await.status(), 200);
    // Admin commands work while the server runs, and a new project's key ingests at once.
    let key2 = create_project(dir.path());
    assert_eq!(
        post(&client, &server, &key2, &[1_000_000]).await.status(),
        200
    );
    let out = minim(dir.path())
        .args(["project", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["projects"].as_array().unwrap().len(), 2);
    // A second server on the same directory is refused with a clear error.
    let out = minim(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = terminate(&mut server.child);
    assert!(status.success(), "exit status {status:?}");
    let store = open_store(dir.path());
    let snap = store.snapshot();
    assert_eq!(snap.rows(), 501);
    assert!(
        snap.memtable.is_empty(),
        "everything was flushed to segments before exit"
    );
    drop(snap);
    drop(store);
    assert_eq!(stored(dir.path()).len(), 501);
}

#[test]
fn invalid_config_is_a_startup_error_naming_the_field() {
    let dir = test_dir();
    let out = minim(dir.path())
        .env("MINIM_STORE__MEMTABLE_MAX_BYTES", "lots")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.memtable_max_bytes"), "{err}");

    let cfg: PathBuf = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[ingest]\nmax_body_bytes = 0\n").unwrap();
    let out = minim(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["project", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.max_body_bytes"));

    let out = minim(dir.path())
        .env("MINIM_MEMORY__ALLOCATOR_PURGE_DELAY_MS", "-2")
        .args(["project", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory.allocator_purge_delay_ms"), "{err}");
}

/// The allocator purge delay a server started with `env` reports at start-up.
fn reported_purge_delay(env: &[(&str, &str)]) -> i64 {
    use std::io::BufRead;
    let dir = test_dir();
    let mut cmd = minim(dir.path());
    cmd.env("MINIM_LOG", "info")
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env_remove("MIMALLOC_RESET_DELAY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _server = Server {
        child,
        url: String::new(),
    };
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some((_, rest)) = line.split_once("allocator_purge_delay_ms=") {
            let value = rest.split_whitespace().next().unwrap_or_default();
            return value.parse().unwrap();
        }
    }
    panic!("the server exited without reporting its allocator purge delay");
}

/// Freed memory stays with the server 10 s by default (queries reuse it instead of the
/// kernel zeroing fresh pages); `[memory] allocator_purge_delay_ms` sets it; mimalloc's
/// own `MIMALLOC_PURGE_DELAY` wins over both.
#[test]
fn allocator_purge_delay_follows_config_unless_mimalloc_is_told() {
    assert_eq!(reported_purge_delay(&[]), 10_000);
    assert_eq!(
        reported_purge_delay(&[("MINIM_MEMORY__ALLOCATOR_PURGE_DELAY_MS", "-1")]),
        -1
    );
    assert_eq!(
        reported_purge_delay(&[
            ("MINIM_MEMORY__ALLOCATOR_PURGE_DELAY_MS", "-1"),
            ("MIMALLOC_PURGE_DELAY", "1234"),
        ]),
        1234
    );
}

#[test]
fn gen_is_deterministic_and_valid_ndjson() {
    let run = |seed: &str| {
        let out = Command::new(BIN)
            .args(["gen", "--events", "2000", "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let a = run("7");
    assert_eq!(a, run("7"));
    assert_ne!(a, run("8"));
    let lines: Vec<&[u8]> = a.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2000);
    for l in lines {
        let v: Value = serde_json::from_slice(l).unwrap();
        assert!(
            v["event"].is_string() && v["distinct_id"].is_string() && v["insert_id"].is_string()
        );
    }
}

/// A real full disk: the data directory on a small tmpfs. Writes get 503 and `/readyz`
/// turns unready, nothing unacknowledged is promised, and once the filesystem grows
/// the server recovers on its own. Needs root (mount); says so and skips otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_then_recovers_when_space_returns() {
    let dir = test_dir();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let key = create_project(&mnt);
    let mut server = start(&mnt);
    let client = reqwest::Client::new();
    let mut acked = BTreeSet::new();
    // Fill the disk: a 503 may also be passing backpressure, so go on until /readyz
    // confirms the store is refusing writes.
    let mut refused: Option<Vec<u64>> = None;
    let mut next = 0u64;
    let mut saw_unready = false;
    for _ in 0..5000 {
        let ids: Vec<u64> = refused.take().unwrap_or_else(|| {
            next += 100;
            (next - 100..next).collect()
        });
        let r = post(&client, &server, &key, &ids).await;
        match r.status().as_u16() {
            200 => acked.extend(ids),
            503 => {
                assert!(r.headers().get("retry-after").is_some());
                refused = Some(ids);
                let ready = client
                    .get(format!("{}/readyz", server.url))
                    .send()
                    .await
                    .unwrap();
                if ready.status() == 503 {
                    saw_unready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        saw_unready,
        "a 3 MB filesystem should fill up and make the server unready"
    );
    let refused = refused.expect("the last batch was refused");

    let grown = Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(grown.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover after space returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post(&client, &server, &key, &refused).await.status(), 200);
    acked.extend(refused);
    assert!(terminate(&mut server.child).success());
    let counts = stored(&mnt);
    for id in &acked {
        assert_eq!(
            counts.get(&format!("id-{id}")),
            Some(&1),
            "acknowledged id-{id} missing or duplicated"
        );
    }
}

/// Runs `minim ARGS --json` and returns its JSON, asserting success.
fn run_json(dir: &Path, args: &[&str]) -> Value {
    let out = minim(dir).args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_admin_commands_plans_subject_requests_and_retention() {
    let dir = test_dir();
    let created = run_json(dir.path(), &["project", "create", "--name", "dsr"]);
    let project = created["project_id"].as_str().unwrap().to_owned();
    let key = created["ingest_key"].as_str().unwrap().to_owned();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "mode: strict\nevents:\n  view:\n    properties:\n      plan: {type: string, class: public}\nretention_days: 400\n",
    )
    .unwrap();
    let plan_path = plan.to_str().unwrap();
    let imported = run_json(
        dir.path(),
        &["plan", "import", "--project", &project, plan_path],
    );
    assert_eq!(imported["mode"], "strict");
    let exported = run_json(
        dir.path(),
        &["plan", "export", "--project", &project, "--format", "json"],
    );
    assert_eq!(exported["retention_days"], 400);
    // A bad plan file is refused naming the field, and the stored plan is unchanged.
    std::fs::write(&plan, "mode: strict\nretention_days: 0\n").unwrap();
    let out = minim(dir.path())
        .args(["plan", "import", "--project", &project, plan_path])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention_days"));

    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let now = chrono_like_now();
    let body = serde_json::json!([
        {"event": "view", "distinct_id": "dsr-user", "timestamp": now, "properties": {"plan": "pro", "x": 1}},
        {"event": "view", "distinct_id": "someone-else", "timestamp": now},
        {"event": "undeclared", "distinct_id": "dsr-user", "timestamp": now}
    ]);
    let r: Value = client
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["accepted"], 2, "{r}");
    assert_eq!(r["dropped"][0]["reason"], "undeclared_event", "{r}");
    // Subject requests need the store: refused clearly while the server holds it.
    let out = minim(dir.path())
        .args([
            "subject",
            "erase",
            "--project",
            &project,
            "--distinct-id",
            "dsr-user",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(terminate(&mut server.child).success());

    let file = dir.path().join("export.json");
    let file_path = file.to_str().unwrap();
    let args = [
        "subject",
        "export",
        "--project",
        &project,
        "--distinct-id",
        "dsr-user",
        "--out",
        file_path,
    ];
    assert_eq!(run_json(dir.path(), &args)["events"], 1);
    let export: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(export["distinct_id"], "dsr-user");
    assert_eq!(export["events"][0]["properties"]["plan"], "pro");
    assert!(
        export["events"][0]["properties"].get("x").is_none(),
        "strict plan"
    );
    let erased = run_json(
        dir.path(),
        &[
            "subject",
            "erase",
            "--project",
            &project,
            "--distinct-id",
            "dsr-user",
        ],
    );
    assert_eq!(erased["events_erased"], 1);
    assert_eq!(run_json(dir.path(), &args)["events"], 0);
    let retention = run_json(dir.path(), &["retention", "run"]);
    assert_eq!(retention["projects"][0]["report"]["events_deleted"], 0);
    let store = open_store(dir.path());
    assert_eq!(
        store.snapshot().rows(),
        1,
        "only the other user's event is left"
    );
}

/// Now as epoch milliseconds (the ingest API accepts numbers).
fn chrono_like_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `minim audit verify` over a log written by real admin commands: OK as written; for
/// each kind of tampering, exit 1, `ok: false` and the first bad record named.
#[test]
fn audit_verify_detects_every_kind_of_tampering() {
    let dir = test_dir();
    let created = run_json(dir.path(), &["project", "create", "--name", "audited"]);
    let project = created["project_id"].as_str().unwrap().to_owned();
    for role in ["viewer", "analyst", "admin", "auditor", "viewer"] {
        run_json(
            dir.path(),
            &["token", "create", "--project", &project, "--role", role],
        );
    }
    let ok = run_json(dir.path(), &["audit", "verify"]);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["records"], 6, "one record per admin command: {ok}");

    let log = dir.path().join("audit").join("audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), 6);
    let join = |ls: Vec<&str>| ls.join("\n") + "\n";
    let modified = lines[2].replacen("\"token_create\"", "\"token_revoke\"", 1);
    assert_ne!(modified, lines[2]);
    let cases: Vec<(&str, String, u64)> = vec![
        (
            "modified",
            {
                let mut l = lines.clone();
                l[2] = &modified;
                join(l)
            },
            3,
        ),
        (
            "deleted",
            {
                let mut l = lines.clone();
                l.remove(2);
                join(l)
            },
            3,
        ),
        (
            "inserted",
            {
                let mut l = lines.clone();
                l.insert(2, lines[1]);
                join(l)
            },
            3,
        ),
        (
            "reordered",
            {
                let mut l = lines.clone();
                l.swap(2, 3);
                join(l)
            },
            3,
        ),
        ("truncated", join(lines[..4].to_vec()), 5),
    ];
    for (kind, text, first_bad) in cases {
        std::fs::write(&log, text).unwrap();
        let out = minim(dir.path())
            .args(["audit", "verify", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{kind}: exit status");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false, "{kind}: {v}");
        assert_eq!(v["first_bad"]["seq"], first_bad, "{kind}: {v}");
        std::fs::write(&log, &original).unwrap();
    }
    let ok = run_json(dir.path(), &["audit", "verify"]);
    assert_eq!(ok["ok"], true, "restored: {ok}");
    // The users command is audited too, and its password policy holds.
    let u = run_json(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@corp.example",
            "--role",
            "auditor",
        ],
    );
    assert!(u["user_id"].as_str().unwrap().starts_with("u_"));
    let weak = minim(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "x@corp.example",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"short\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!weak.status.success());
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("password"), "{stderr}");
    let ok = run_json(dir.path(), &["audit", "verify"]);
    assert_eq!(ok["records"], 8, "both user commands recorded: {ok}");
    let _ = std::fs::remove_file(dir.path().with_file_name(format!(
        "{}.audit-key",
        dir.path().file_name().unwrap().to_string_lossy()
    )));
}

/// The ways a planted string could appear in a file: as is, UTF-16 (LE and BE),
/// base64 at each of the three alignments, hex in either case.
fn encodings(s: &str) -> Vec<(String, Vec<u8>)> {
    use data_encoding::{BASE64, HEXLOWER, HEXUPPER};
    let mut out = vec![("plain".to_owned(), s.as_bytes().to_vec())];
    let le: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    out.push(("utf-16le".into(), le));
    out.push(("utf-16be".into(), be));
    for k in 0..3usize {
        let mut padded = vec![b'x'; k];
        padded.extend_from_slice(s.as_bytes());
        let enc = BASE64.encode(&padded);
        // Drop the characters that depend on the neighbouring bytes.
        let skip = (k * 4).div_ceil(3);
        let core = &enc[skip..enc.len().saturating_sub(4)];
        out.push((format!("base64+{k}"), core.as_bytes().to_vec()));
    }
    out.push(("hex".into(), HEXLOWER.encode(s.as_bytes()).into_bytes()));
    out.push(("HEX".into(), HEXUPPER.encode(s.as_bytes()).into_bytes()));
    out
}

/// Every regular file under `root`, recursively.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Fails naming the file and encoding if any planted string is found under `root`.
fn assert_nothing_planted_under(root: &Path, planted: &[&str]) -> usize {
    let files = files_under(root);
    let needles: Vec<(String, String, Vec<u8>)> = planted
        .iter()
        .flat_map(|p| encodings(p).into_iter().map(|(k, b)| (p.to_string(), k, b)))
        .collect();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for (p, kind, n) in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                "{p:?} ({kind}) found in {}",
                f.display()
            );
        }
    }
    files.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_data_directory_holds_no_plaintext_and_needs_the_master_key() {
    let dir = test_dir();
    let planted = [
        "planted.person@example.org",
        "Zebulon Quartermaine",
        "planted_checkout_event",
        "https://planted.example.net/very/secret/path",
        "planted-value-7781",
        "planted-project-name",
    ];
    let out = minim(dir.path())
        .args(["project", "create", "--name", planted[5], "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["ingest_key"].as_str().unwrap().to_owned();
    // Keep an identity map: its original ids are personal data under their own key; so
    // are `name` values, which the plan declares personal.
    import_plan(
        dir.path(),
        created["project_id"].as_str().unwrap(),
        "mode: permissive\nidentity_map: true\nproperties:\n  name:\n    class: personal\n",
    );
    let server = start(dir.path());
    let client = reqwest::Client::new();
    let body: Vec<Value> = (0..300)
        .map(|i| {
            serde_json::json!({
                "event": if i % 3 == 0 { planted[2] } else { "page_view" },
                "distinct_id": format!("user-{}", i % 20),
                "insert_id": format!("plant-{i}"),
                "properties": {
                    "email": planted[0],
                    "name": planted[1],
                    "$current_url": planted[3],
                    "plan": planted[4],
                    "n": i,
                }
            })
        })
        .collect();
    for chunk in body.chunks(50) {
        let r = client
            .post(format!("{}/api/v1/events", server.url))
            .bearer_auth(&key)
            .json(&chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // While running: the WAL (and whatever was flushed) is ciphertext.
    assert_nothing_planted_under(dir.path(), &planted);
    // Flushes and compactions run every few hundred ms here; SIGTERM flushes the rest.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The query engine reads the encrypted segments (and the memtable) with the keys.
    let project = run_json(dir.path(), &["project", "list"])["projects"][0]["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = run_json(
        dir.path(),
        &[
            "token",
            "create",
            "--project",
            &project,
            "--role",
            "analyst",
        ],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .post(format!("{}/api/v1/projects/{project}/sql", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"sql": format!(
            "SELECT count(*) AS n FROM events WHERE event = '{}'", planted[2])}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("100"), "{body}");
    let mut server = server;
    assert!(terminate(&mut server.child).success());
    let n = assert_nothing_planted_under(dir.path(), &planted);
    assert!(
        n >= 4,
        "expected meta, manifest, segments and the audit log: {n} files"
    );

    // The data is there, readable with the keys: what was kept of the planted values.
    {
        let store = open_store(dir.path());
        let snap = store.snapshot();
        let project = snap.projects().into_iter().next().unwrap();
        let events = snap.events(&project).unwrap();
        assert_eq!(events.len(), 300);
        assert_eq!(events.iter().filter(|e| e.event == planted[2]).count(), 100);
        assert!(events.iter().all(|e| e.properties.contains(planted[4])));
        // Personal values sit apart, in segments' personal column (own key).
        for e in &events {
            assert!(
                e.properties.contains(r#""name":"[redacted]""#),
                "{}",
                e.properties
            );
            assert!(e.full_properties().contains(planted[1]));
        }
        assert!(snap.segments.iter().all(|s| s.meta.personal));
        assert!(snap.memtable.is_empty());
        // The identity map holds original ids sealed under the project's personal key.
        let ring = Arc::new(Keyring::open(&Keyring::default_dir(dir.path()), None).unwrap());
        let (_, meta_key) = ring
            .derived(&minim_crypto::KeysetName::Meta, "minim/sqlcipher")
            .unwrap();
        let meta =
            minim_meta::SqliteMeta::open_encrypted(&dir.path().join("meta.db"), &meta_key).unwrap();
        let pseudonym = &events[0].distinct_id;
        let (sealed, _) = minim_meta::MetaStore::identity(&meta, &project, pseudonym)
            .unwrap()
            .expect("an identity map entry");
        assert!(
            !sealed.contains("user-"),
            "original id in the clear: {sealed}"
        );
        let original = Encryption::new(ring)
            .open_personal(&project, pseudonym, &sealed)
            .unwrap();
        assert!(original.starts_with("user-"), "{original}");
    }

    // Without the master key nothing opens: not the server, not an admin command.
    let keys = Keyring::default_dir(dir.path());
    let hidden = keys.with_extension("moved-away");
    std::fs::rename(keys.join("master.key"), &hidden).unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["project", "list"],
    ] {
        let out = minim(dir.path()).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} ran without the master key");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("MINIM_MASTER_KEY") && err.contains("master.key"),
            "{args:?}: {err}"
        );
    }
    // A wrong key from the environment is named as wrong.
    let out = minim(dir.path())
        .env("MINIM_MASTER_KEY", "ab".repeat(32))
        .args(["project", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not open"));
    // The right key from the environment works without the file.
    let master = std::fs::read_to_string(&hidden).unwrap();
    let out = minim(dir.path())
        .env("MINIM_MASTER_KEY", master.trim())
        .args(["project", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(planted[5]));
    // An environment master key is rotated with the new one in MINIM_NEW_MASTER_KEY
    // (the server is stopped); afterwards only the new key opens anything.
    let new_master = "5c".repeat(32);
    let out = minim(dir.path())
        .env("MINIM_MASTER_KEY", master.trim())
        .env("MINIM_NEW_MASTER_KEY", &new_master)
        .args(["keys", "rotate", "--master", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (key, works) in [(master.trim(), false), (new_master.as_str(), true)] {
        let out = minim(dir.path())
            .env("MINIM_MASTER_KEY", key)
            .args(["project", "list", "--json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            works,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!keys.join("master.key").exists(), "no key was written");
    // Back to a key file, now the new key.
    std::fs::write(keys.join("master.key"), format!("{new_master}\n")).unwrap();
    std::fs::remove_file(&hidden).unwrap();

    // A flipped byte in a segment: an error naming the file, never other data.
    let segment = files_under(&dir.path().join("events/segments"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a segment");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let enc = Encryption::new(Arc::new(Keyring::open(&keys, None).unwrap()));
    let read = || minim_store::segment::read_segment(&segment, None, Some(&enc));
    let good = read().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Bytes of the first page's encrypted header (after the 4-byte magic, the module's
    // 4-byte length and 12-byte nonce). Every module is authenticated; what no reader
    // uses (a module's length prefix, the page index for a reader that skips it) may
    // change without an error, but then nothing read changes (the segment unit tests
    // flip bytes sampled across whole files).
    for b in &mut bytes[24..32] {
        *b ^= 0x01;
    }
    std::fs::write(&segment, &bytes).unwrap();
    // Whichever column the bytes are in, reading it is an error naming the file.
    match read() {
        Err(e) => assert!(e.to_string().contains(&name), "{e}"),
        Ok(b) => panic!("tampering undetected (same data: {})", b == good),
    }
    // The store either notices (recovery reads recent segments' insert ids; events read
    // the base columns) or, when the byte is in a column nothing read, answers as before.
    match open_store_with(dir.path(), &keys) {
        Err(e) => assert!(e.to_string().contains(&name), "{e}"),
        Ok(store) => {
            let snap = store.snapshot();
            let project = snap.projects().into_iter().next().unwrap();
            match snap.events(&project) {
                Err(e) => assert!(e.to_string().contains(&name), "{e}"),
                Ok(events) => assert_eq!(events.len(), 300, "tampering changed the data"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_load_survives_kill_9_and_re_encrypts_everything() {
    let dir = test_dir();
    let key = create_project(dir.path());
    let project = run_json(dir.path(), &["project", "list"])["projects"][0]["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // `pad` values are personal: segments carry a personal column under its own key.
    import_plan(
        dir.path(),
        &project,
        "mode: permissive\nproperties:\n  pad:\n    class: personal\n",
    );
    let client = reqwest::Client::new();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    let mut rotations = 0;
    // Three rounds: ingest, rotate while ingesting, kill -9 at a random moment of the
    // background re-encryption, restart.
    for round in 0..3 {
        let mut server = start(dir.path());
        for i in 0..40 {
            let ids: Vec<u64> = (next..next + 25).collect();
            next += 25;
            if post(&client, &server, &key, &ids).await.status() == 200 {
                acked.extend(ids);
            }
            if i == 20 {
                let out = run_json(dir.path(), &["keys", "rotate", "--project", &project]);
                assert!(out["key_id"].as_u64().is_some(), "{out}");
                assert!(out["personal_key_id"].as_u64().is_some(), "{out}");
                rotations += 1;
            }
            if i == 30 && round == 1 {
                // The master key too, while the server runs: it picks the new one up.
                let out = run_json(dir.path(), &["keys", "rotate", "--master"]);
                assert!(out["master_key_id"].as_u64().is_some(), "{out}");
            }
        }
        let wait = rand::rng().random_range(0..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if round < 2 {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
        } else {
            // Last round: let re-encryption finish, then stop cleanly.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let st = run_json(dir.path(), &["keys", "status"]);
                let p = &st["projects"][0];
                if p["segments_stale"] == 0 && p["segments"].as_u64().unwrap_or(0) > 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "re-encryption did not finish: {st}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            assert!(terminate(&mut server.child).success());
        }
    }
    assert_eq!(rotations, 3);
    // Every acknowledged event is readable, once.
    let counts = stored(dir.path());
    for id in &acked {
        assert_eq!(
            counts.get(&format!("id-{id}")),
            Some(&1),
            "id-{id} lost or doubled"
        );
    }
    // Old keys can go now that nothing uses them; the data stays readable.
    let st = run_json(dir.path(), &["keys", "status"]);
    let keys_before = st["keysets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyset"] == format!("project:{project}"))
        .map(|k| k["keys"].as_array().unwrap().len())
        .unwrap();
    assert_eq!(keys_before, 4, "one original key and three rotations: {st}");
    let personal_keys = st["keysets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyset"] == format!("personal:{project}"))
        .map(|k| k["keys"].as_array().unwrap().len());
    assert_eq!(personal_keys, Some(4), "rotated with the data key: {st}");
    let retired = run_json(dir.path(), &["keys", "retire", "--project", &project]);
    assert_eq!(retired["retired"], 3, "{retired}");
    let again = stored(dir.path());
    assert_eq!(again.len(), acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_shreds_it_live_and_in_a_copy_taken_before() {
    let dir = test_dir();
    let a = run_json(dir.path(), &["project", "create", "--name", "doomed"]);
    let b = run_json(dir.path(), &["project", "create", "--name", "kept"]);
    let (a_id, b_id) = (
        a["project_id"].as_str().unwrap().to_owned(),
        b["project_id"].as_str().unwrap().to_owned(),
    );
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let ids_a: Vec<u64> = (0..100).collect();
    let ids_b: Vec<u64> = (100..200).collect();
    let key_a = a["ingest_key"].as_str().unwrap();
    let key_b = b["ingest_key"].as_str().unwrap();
    assert_eq!(post(&client, &server, key_a, &ids_a).await.status(), 200);
    assert_eq!(post(&client, &server, key_b, &ids_b).await.status(), 200);
    assert!(terminate(&mut server.child).success());

    // A copy of the data directory taken before the deletion (what an old backup holds).
    let copy = test_dir();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir.path().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());

    let out = run_json(dir.path(), &["project", "delete", "--project", &a_id]);
    assert_eq!(out["keys_destroyed"], true, "{out}");
    assert!(out["segments_removed"].as_u64().unwrap() >= 1, "{out}");

    // Live: the project's events and files are gone, the other project's are intact.
    let counts = stored(dir.path());
    assert_eq!(counts.len(), 100);
    assert!(
        counts
            .keys()
            .all(|k| k.trim_start_matches("id-").parse::<u64>().unwrap() >= 100)
    );
    let a_files = files_under(&dir.path().join("events/segments").join(&a_id));
    assert!(a_files.is_empty(), "{a_files:?}");
    let list = run_json(dir.path(), &["project", "list"]);
    assert!(!list.to_string().contains(&a_id), "{list}");

    // The earlier copy, even opened with the live keys: the deleted project is
    // unreadable, the other one reads.
    let store = open_store_with(copy.path(), &Keyring::default_dir(dir.path())).unwrap();
    let snap = store.snapshot();
    let gone = minim_core::ProjectId::new(a_id.clone()).unwrap();
    let kept = minim_core::ProjectId::new(b_id.clone()).unwrap();
    let err = snap.events(&gone).expect_err("a deleted project read back");
    assert!(err.to_string().contains("destroyed"), "{err}");
    assert_eq!(snap.events(&kept).unwrap().len(), 100);
    drop(snap);
    drop(store);

    // The deletion is in the audit log, which verifies.
    let v = run_json(dir.path(), &["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let log = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    assert!(
        log.contains("project_delete"),
        "no audit record of the deletion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_ciphertext_restore_verified_and_shred_with_their_project() {
    let dir = test_dir();
    let a = run_json(dir.path(), &["project", "create", "--name", "backed-up-a"]);
    let b = run_json(dir.path(), &["project", "create", "--name", "backed-up-b"]);
    let a_id = a["project_id"].as_str().unwrap().to_owned();
    let b_id = b["project_id"].as_str().unwrap().to_owned();
    let planted = ["planted_backup_event", "planted-backup@example.org"];
    let server = start(dir.path());
    let client = reqwest::Client::new();
    for (key, base) in [
        (a["ingest_key"].as_str().unwrap(), 0),
        (b["ingest_key"].as_str().unwrap(), 1000),
    ] {
        let body: Vec<Value> = (0..60)
            .map(|i| {
                serde_json::json!({"event": planted[0], "distinct_id": format!("u{}", i % 7),
                    "insert_id": format!("b-{}", base + i), "properties": {"contact": planted[1]}})
            })
            .collect();
        let r = client
            .post(format!("{}/api/v1/events", server.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Taken while the server runs (its memtable lives in the WAL, which is copied).
    let out_dir = test_dir();
    let backup = out_dir.path().join("full.mbk");
    let made = run_json(
        dir.path(),
        &["backup", "create", "--out", backup.to_str().unwrap()],
    );
    assert!(made["files"].as_u64().unwrap() >= 3, "{made}");
    let mut server = server;
    assert!(terminate(&mut server.child).success());
    assert_nothing_planted_under(out_dir.path(), &planted);

    // Restore onto a new data directory with the same keys directory.
    let keys = Keyring::default_dir(dir.path());
    // Restoring elsewhere needs the keys directory and the audit signing key.
    let mut audit_key = dir.path().as_os_str().to_owned();
    audit_key.push(".audit-key");
    let restore_into = |target: &Path, file: &Path| {
        minim(target)
            .env("MINIM_CRYPTO__KEYS_DIR", &keys)
            .env("MINIM_SECURITY__AUDIT_SIGNING_KEY", &audit_key)
            .args([
                "backup",
                "restore",
                "--from",
                file.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap()
    };
    let target = out_dir.path().join("restored");
    let out = restore_into(&target, &backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(restored["projects"], 2, "{restored}");
    assert_eq!(restored["events"], 120, "{restored}");
    let v = minim(&target)
        .env("MINIM_CRYPTO__KEYS_DIR", &keys)
        .env("MINIM_SECURITY__AUDIT_SIGNING_KEY", &audit_key)
        .args(["audit", "verify", "--json"])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // A flipped byte: refused, naming the file, and nothing restored.
    let mut bytes = std::fs::read(&backup).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    let bad = out_dir.path().join("bad.mbk");
    std::fs::write(&bad, &bytes).unwrap();
    let target2 = out_dir.path().join("restored-bad");
    let out = restore_into(&target2, &bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.mbk"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target2.exists() || std::fs::read_dir(&target2).unwrap().next().is_none());

    // Delete project A; the backup taken before it no longer yields A's events.
    run_json(dir.path(), &["project", "delete", "--project", &a_id]);
    let target3 = out_dir.path().join("restored-after-delete");
    let out = restore_into(&target3, &backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = open_store_with(&target3, &keys).unwrap();
    let snap = store.snapshot();
    let gone = minim_core::ProjectId::new(a_id).unwrap();
    let kept = minim_core::ProjectId::new(b_id).unwrap();
    assert!(
        snap.events(&gone).map(|e| e.is_empty()).unwrap_or(true),
        "a deleted project's events came back"
    );
    assert_eq!(snap.events(&kept).unwrap().len(), 60);
}
