//! `minim load`: replays NDJSON events against Minim's native ingest or ClickHouse's HTTP interface and reports throughput and latency.
//!
//! The run has two phases. *Prepare* reads the input once, turns it into request bodies
//! (transformed for ClickHouse, gzipped if asked) and keeps them in memory. *Send* is the
//! only timed phase: a dispatcher hands bodies to at most `--concurrency` in-flight
//! requests, either as fast as the server answers (closed loop) or on a fixed schedule
//! (`--rate`, so latency can be measured at a chosen load). Latency is per HTTP request,
//! from send to the last byte of the response, recorded for successful requests only.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Largest batch we will build; keeps one request body within reason.
const MAX_BATCH_EVENTS: u32 = 1_000_000;
/// Most in-flight requests.
const MAX_CONCURRENCY: u32 = 4096;
/// A `Retry-After` longer than this is clamped, so a misbehaving server cannot stall the run.
const MAX_RETRY_AFTER_MS: u64 = 30_000;
/// Backoff for a retryable status without a usable `Retry-After`: first and last step.
const BACKOFF_START_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 5_000;
/// How many distinct failure messages the summary shows.
const MAX_ERROR_SAMPLES: usize = 5;
/// Progress lines on stderr, this often.
const PROGRESS_INTERVAL_MS: u64 = 5_000;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Minim native ingest: `POST {url}/api/v1/events` with the ingest key.
    Minim,
    /// ClickHouse HTTP interface: `INSERT INTO {table} FORMAT JSONEachRow`.
    Clickhouse,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Minim => "minim",
            Target::Clickhouse => "clickhouse",
        }
    }
}

/// Replay NDJSON events (e.g. from `minim gen`) against a server and measure it.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Base URL of the server under test.
    #[arg(long, env = "MINIM_LOAD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// What the URL points at.
    #[arg(long, value_enum, default_value_t = Target::Minim)]
    pub target: Target,

    /// Ingest key for `--target minim` (sent as `Authorization: Bearer ...`).
    #[arg(long, env = "MINIM_INGEST_KEY", hide_env_values = true)]
    pub key: Option<String>,

    /// ClickHouse table to insert into (`--target clickhouse`).
    #[arg(long, default_value = "events")]
    pub table: String,

    /// NDJSON input, one native event per line; `-` or absent reads stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONCURRENCY)))]
    pub concurrency: u32,

    /// Events per request.
    #[arg(long, default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BATCH_EVENTS)))]
    pub batch_size: u32,

    /// Target rate in events per second: batches are sent on a fixed schedule (open loop,
    /// bounded by --concurrency). Absent: as fast as the server answers.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Stop sending after this many seconds (in-flight requests still complete).
    #[arg(long)]
    pub duration_s: Option<f64>,

    /// Read at most this many events from the input (bounds memory; all bodies are
    /// built before timing starts).
    #[arg(long)]
    pub max_events: Option<u64>,

    /// Send the input again and again until --duration-s (requires it). Replayed events
    /// keep their insert_id, so Minim stores them once; ClickHouse stores every copy.
    #[arg(long = "loop", requires = "duration_s")]
    pub loop_input: bool,

    /// Gzip request bodies (`Content-Encoding: gzip`); compressed before timing starts.
    #[arg(long)]
    pub gzip: bool,

    /// Per-request timeout.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,

    /// Retries of one batch on 503/429 before it counts as an error.
    #[arg(long, default_value_t = 20)]
    pub max_retries: u32,

    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// Print one JSON object with the results on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of events per second");
    }
    if let Some(d) = args.duration_s
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--duration-s must be a positive number of seconds");
    }
    if args.timeout_s == 0 {
        bail!("--timeout-s must be at least 1");
    }
    let url = request_url(&args.url, args.target, &args.table)?;
    let auth = match args.target {
        Target::Minim => {
            let key = args.key.as_deref().filter(|k| !k.is_empty()).context(
                "--target minim needs an ingest key: pass --key or set MINIM_INGEST_KEY",
            )?;
            Some(format!("Bearer {key}"))
        }
        Target::Clickhouse => None,
    };

    // Prepare: everything input-dependent happens here, before the clock starts.
    let prep_started = Instant::now();
    let opts = PrepareOptions {
        target: args.target,
        batch_size: args.batch_size,
        max_events: args.max_events,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let file = args.file.clone();
    let gzip = args.gzip;
    let prepared = tokio::task::spawn_blocking(move || -> anyhow::Result<Prepared> {
        let mut prepared = match file.as_deref() {
            Some(p) if p != std::path::Path::new("-") => {
                let f = std::fs::File::open(p)
                    .with_context(|| format!("opening input {}", p.display()))?;
                prepare(BufReader::with_capacity(1 << 20, f), &opts)?
            }
            _ => prepare(std::io::stdin().lock(), &opts)?,
        };
        if gzip {
            for body in &mut prepared.bodies {
                *body = gzip_bytes(body)?;
            }
        }
        Ok(prepared)
    })
    .await
    .context("prepare task failed")??;
    if prepared.events == 0 {
        bail!("the input holds no events");
    }
    let wire_bytes: u64 = prepared.bodies.iter().map(|b| b.len() as u64).sum();
    if !args.quiet {
        eprintln!(
            "prepared {} events in {} requests ({:.1} MiB on the wire{}) in {:.1}s",
            prepared.events,
            prepared.bodies.len(),
            wire_bytes as f64 / (1 << 20) as f64,
            if args.gzip { ", gzipped" } else { "" },
            prep_started.elapsed().as_secs_f64()
        );
    }

    // The bodies live until the process exits; leaking them lets every request (and every
    // replay with --loop) send them without copying.
    let batches: Arc<[Batch]> = prepared
        .bodies
        .into_iter()
        .zip(prepared.batch_events)
        .map(|(body, events)| Batch {
            body: Vec::leak(body),
            events,
        })
        .collect();

    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency as usize)
        .timeout(Duration::from_secs(args.timeout_s))
        .build()
        .context("building the HTTP client")?;
    let sender = Arc::new(Sender {
        client,
        url,
        auth,
        target: args.target,
        gzip: args.gzip,
        max_retries: args.max_retries,
        stats: Mutex::new(Stats::default()),
    });

    let started = Instant::now();
    let deadline = args
        .duration_s
        .map(|d| started + Duration::from_secs_f64(d));
    let progress = (!args.quiet).then(|| tokio::spawn(progress_loop(sender.clone(), started)));
    let dispatch = dispatch(
        &sender,
        &batches,
        DispatchPlan {
            concurrency: args.concurrency,
            rate: args.rate,
            deadline,
            loop_input: args.loop_input,
        },
        started,
    )
    .await;
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
    }

    let stats = std::mem::take(&mut *lock(&sender.stats));
    let report = Report::new(&args, stats, elapsed, dispatch);
    if args.json {
        eprint!("{}", report.human());
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    if report.stats.events_ok == 0 {
        bail!("no event was accepted; see the errors above");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Prepare

struct PrepareOptions {
    target: Target,
    batch_size: u32,
    max_events: Option<u64>,
    /// Stands in for an absent `timestamp` in the ClickHouse transform.
    now_ms: i64,
}

#[derive(Debug, Default)]
struct Prepared {
    bodies: Vec<Vec<u8>>,
    batch_events: Vec<u32>,
    events: u64,
}

/// Reads NDJSON and cuts it into request bodies of `batch_size` lines (the last may be
/// shorter). Blank lines are skipped. For ClickHouse every line goes through
/// [`clickhouse_line`]; for Minim lines are sent as they are.
fn prepare(mut input: impl BufRead, opts: &PrepareOptions) -> anyhow::Result<Prepared> {
    let mut out = Prepared::default();
    let mut body = Vec::new();
    let mut in_body = 0u32;
    let mut line = String::new();
    let mut line_no = 0u64;
    while opts.max_events.is_none_or(|m| out.events < m) {
        line.clear();
        let n = input
            .read_line(&mut line)
            .with_context(|| format!("reading input line {}", line_no + 1))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        match opts.target {
            Target::Minim => body.extend_from_slice(trimmed.as_bytes()),
            Target::Clickhouse => {
                let row = clickhouse_line(trimmed, opts.now_ms)
                    .with_context(|| format!("input line {line_no}"))?;
                body.extend_from_slice(row.as_bytes());
            }
        }
        body.push(b'\n');
        in_body += 1;
        out.events += 1;
        if in_body == opts.batch_size {
            out.bodies.push(std::mem::take(&mut body));
            out.batch_events.push(in_body);
            in_body = 0;
        }
    }
    if in_body > 0 {
        out.bodies.push(body);
        out.batch_events.push(in_body);
    }
    Ok(out)
}

/// Rewrites one native event as a row ClickHouse 18.16 can read with `JSONEachRow` into
/// `(event String, distinct_id String, timestamp DateTime, insert_id String, properties String)`:
/// `properties` becomes a JSON string (18.16 cannot read an object into a String column),
/// `timestamp` becomes `YYYY-MM-DD hh:mm:ss` UTC (DateTime has whole seconds and its
/// default input format takes only that shape), unknown fields are dropped.
fn clickhouse_line(line: &str, now_ms: i64) -> anyhow::Result<String> {
    let value: Value = serde_json::from_str(line).context("not valid JSON")?;
    let obj = value.as_object().context("not a JSON object")?;
    let text = |field: &str| -> anyhow::Result<String> {
        match obj.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => bail!("`{field}` is missing or not a string"),
        }
    };
    let event = text("event")?;
    let distinct_id = text("distinct_id")?;
    let timestamp_ms = match obj.get("timestamp") {
        None | Some(Value::Null) => now_ms,
        Some(Value::String(s)) => parse_timestamp_str(s)?,
        Some(Value::Number(n)) => {
            epoch_number_to_ms(n.as_f64().context("`timestamp` is not a usable number")?)?
        }
        Some(_) => bail!("`timestamp` must be a string or a number"),
    };
    let insert_id = match obj.get("insert_id") {
        None | Some(Value::Null) => String::new(),
        Some(_) => text("insert_id")?,
    };
    let properties = match obj.get("properties") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(p @ Value::Object(_)) => p.to_string(),
        Some(_) => bail!("`properties` must be an object"),
    };
    Ok(json!({
        "event": event,
        "distinct_id": distinct_id,
        "timestamp": clickhouse_datetime(timestamp_ms)?,
        "insert_id": insert_id,
        "properties": properties,
    })
    .to_string())
}

/// RFC 3339 (`2026-01-05T10:00:00Z`, offsets, fractions); a zone-less
/// `2026-01-05T10:00:00[.fff]` or `2026-01-05 10:00:00` is taken as UTC.
fn parse_timestamp_str(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    bail!("`timestamp` {s:?} is not an RFC 3339 time")
}

/// Epoch seconds or milliseconds, told apart by size: anything at or above 1e11 is
/// milliseconds (1e11 seconds is in the year 5138).
fn epoch_number_to_ms(n: f64) -> anyhow::Result<i64> {
    if !n.is_finite() {
        bail!("`timestamp` is not finite");
    }
    let ms = if n.abs() >= 1e11 { n } else { n * 1000.0 };
    Ok(ms.round() as i64)
}

/// `YYYY-MM-DD hh:mm:ss` in UTC, within ClickHouse DateTime's range (1970 to 2105).
fn clickhouse_datetime(ms: i64) -> anyhow::Result<String> {
    const MAX_SECS: i64 = u32::MAX as i64;
    let secs = ms.div_euclid(1000);
    if !(0..=MAX_SECS).contains(&secs) {
        bail!("timestamp {ms} ms is outside ClickHouse DateTime's range");
    }
    let t = chrono::DateTime::from_timestamp(secs, 0).context("timestamp out of range")?;
    Ok(t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Gzips a body (default level). Runs while preparing, before timing starts.
fn gzip_bytes(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::default(),
    );
    enc.write_all(data).context("gzip")?;
    enc.finish().context("gzip")
}

fn request_url(base: &str, target: Target, table: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--url must start with http:// (got {base:?})");
    }
    Ok(match target {
        Target::Minim => format!("{base}/api/v1/events"),
        Target::Clickhouse => {
            if table.is_empty() {
                bail!("--table must not be empty");
            }
            let query = format!("INSERT INTO {table} FORMAT JSONEachRow");
            format!("{base}/?query={}", percent_encode(&query))
        }
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Send

struct Batch {
    body: &'static [u8],
    events: u32,
}

struct Sender {
    client: reqwest::Client,
    url: String,
    auth: Option<String>,
    target: Target,
    gzip: bool,
    max_retries: u32,
    stats: Mutex<Stats>,
}

#[derive(Debug, Default)]
struct Stats {
    /// HTTP requests issued, retries included.
    requests: u64,
    /// Retried attempts (503/429).
    retries: u64,
    /// Batches that finally failed (error status, transport error, bad 200 body).
    errors: u64,
    /// Events in batches handed to the server (once per batch, however often retried).
    events_sent: u64,
    /// Events the server acknowledged: for ClickHouse every event of a 200; for Minim the
    /// response's `accepted`.
    events_ok: u64,
    /// Events Minim listed in `rejected`.
    events_rejected: u64,
    /// Accepted events Minim reported as already stored (`deduplicated`).
    events_deduplicated: u64,
    /// Body bytes of successful requests, as sent.
    bytes_ok: u64,
    /// Per successful request, send to end of response, microseconds.
    latencies_us: Vec<u64>,
    error_samples: Vec<String>,
    in_flight: u64,
}

impl Stats {
    fn note_error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }
}

fn lock(m: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    // A panic while holding the lock only ever interrupts counter updates.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct DispatchPlan {
    concurrency: u32,
    rate: Option<f64>,
    deadline: Option<Instant>,
    loop_input: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct DispatchResult {
    /// Worst delay between a batch's scheduled send time and its actual send (only with
    /// --rate): large values mean the target rate was not sustained.
    max_lag: Duration,
    interrupted: bool,
}

/// Hands batches to workers: at most `concurrency` in flight, on the `--rate` schedule if
/// there is one, until the input is used up (or, with --loop, the deadline passes).
async fn dispatch(
    sender: &Arc<Sender>,
    batches: &Arc<[Batch]>,
    plan: DispatchPlan,
    started: Instant,
) -> DispatchResult {
    let permits = Arc::new(Semaphore::new(plan.concurrency as usize));
    let mut tasks = JoinSet::new();
    let mut result = DispatchResult::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut events_dispatched = 0u64;
    let mut seq = 0usize;
    loop {
        if !plan.loop_input && seq >= batches.len() {
            break;
        }
        if plan.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let idx = seq % batches.len();
        let scheduled = plan
            .rate
            .map(|rate| started + schedule_offset(events_dispatched, rate));
        let wait_until = match (scheduled, plan.deadline) {
            (Some(s), Some(d)) if d <= s => break,
            (Some(s), _) => Some(s),
            (None, _) => None,
        };
        let permit = tokio::select! {
            biased;
            _ = &mut ctrl_c => { result.interrupted = true; break; }
            permit = async {
                if let Some(t) = wait_until {
                    tokio::time::sleep_until(t.into()).await;
                }
                permits.clone().acquire_owned().await
            } => permit,
        };
        let Ok(permit) = permit else { break };
        if let Some(s) = scheduled {
            result.max_lag = result
                .max_lag
                .max(Instant::now().saturating_duration_since(s));
        }
        events_dispatched += u64::from(batches[idx].events);
        seq += 1;
        // Reap finished tasks so the set stays small on long runs.
        while tasks.try_join_next().is_some() {}
        let sender = sender.clone();
        let batches = batches.clone();
        let deadline = plan.deadline;
        tasks.spawn(async move {
            sender.send(&batches[idx], deadline).await;
            drop(permit);
        });
    }
    // Let in-flight requests finish; a (second) Ctrl-C abandons them.
    loop {
        tokio::select! {
            biased;
            _ = &mut ctrl_c, if !result.interrupted => {
                result.interrupted = true;
                tasks.abort_all();
            }
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
    result
}

/// When the batch that starts after `events_before` events is due at `rate` events/s.
fn schedule_offset(events_before: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(events_before as f64 / rate)
}

/// What a 200 acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    accepted: u64,
    rejected: u64,
    /// Accepted events Minim already had (repeated `insert_id`), if it says so.
    deduplicated: u64,
}

enum Attempt {
    Ok(Ack),
    Retry(Duration),
    Fail(String),
}

impl Sender {
    async fn send(&self, batch: &Batch, deadline: Option<Instant>) {
        {
            let mut s = lock(&self.stats);
            s.events_sent += u64::from(batch.events);
            s.in_flight += 1;
        }
        let mut retries = 0u32;
        loop {
            let started = Instant::now();
            let attempt = self.attempt(batch, retries).await;
            let latency = started.elapsed();
            let retry_in = {
                let mut s = lock(&self.stats);
                s.requests += 1;
                match attempt {
                    Attempt::Ok(ack) => {
                        s.events_ok += ack.accepted;
                        s.events_rejected += ack.rejected;
                        s.events_deduplicated += ack.deduplicated;
                        s.bytes_ok += batch.body.len() as u64;
                        s.latencies_us
                            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                        None
                    }
                    Attempt::Retry(wait)
                        if retries < self.max_retries
                            && deadline.is_none_or(|d| Instant::now() + wait < d) =>
                    {
                        s.retries += 1;
                        Some(wait)
                    }
                    Attempt::Retry(_) => {
                        s.note_error(format!(
                            "still overloaded after {retries} retries (or the run ended)"
                        ));
                        None
                    }
                    Attempt::Fail(msg) => {
                        s.note_error(msg);
                        None
                    }
                }
            };
            match retry_in {
                Some(wait) => {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                None => break,
            }
        }
        lock(&self.stats).in_flight -= 1;
    }

    async fn attempt(&self, batch: &Batch, retries: u32) -> Attempt {
        let mut req = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/x-ndjson")
            .body(batch.body);
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        if self.gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Fail(format!("request failed: {}", error_chain(&e))),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Fail(format!("reading response: {}", error_chain(&e))),
        };
        match status {
            200 => match self.target {
                Target::Clickhouse => Attempt::Ok(Ack {
                    accepted: u64::from(batch.events),
                    rejected: 0,
                    deduplicated: 0,
                }),
                Target::Minim => match parse_minim_response(&body, batch.events) {
                    Ok(ack) => Attempt::Ok(ack),
                    Err(e) => Attempt::Fail(format!("200 with an unexpected body: {e:#}")),
                },
            },
            503 | 429 => Attempt::Retry(retry_wait(retry_after.as_deref(), retries)),
            _ => Attempt::Fail(format!("HTTP {status}: {}", snippet(&body))),
        }
    }
}

/// `{"accepted": N, "rejected": [...], "deduplicated": D}` -> [`Ack`]. Without `accepted`,
/// every event not rejected counts as accepted; `deduplicated` is optional.
fn parse_minim_response(body: &[u8], batch_events: u32) -> anyhow::Result<Ack> {
    let v: Value = serde_json::from_slice(body).context("not JSON")?;
    let rejected = match v.get("rejected") {
        None | Some(Value::Null) => 0,
        Some(Value::Array(a)) => a.len() as u64,
        Some(_) => bail!("`rejected` is not an array"),
    };
    let accepted = match v.get("accepted") {
        Some(a) => a.as_u64().context("`accepted` is not a count")?,
        None => u64::from(batch_events).saturating_sub(rejected),
    };
    let deduplicated = match v.get("deduplicated") {
        None | Some(Value::Null) => 0,
        Some(d) => d.as_u64().context("`deduplicated` is not a count")?,
    };
    Ok(Ack {
        accepted,
        rejected,
        deduplicated,
    })
}

/// How long to wait before retry number `retries + 1`: the server's `Retry-After` in
/// seconds if it sent one (clamped), else exponential backoff.
fn retry_wait(retry_after: Option<&str>, retries: u32) -> Duration {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<f64>().ok())
        && secs.is_finite()
        && secs >= 0.0
    {
        let ms = (secs * 1000.0).min(MAX_RETRY_AFTER_MS as f64) as u64;
        return Duration::from_millis(ms);
    }
    let ms = BACKOFF_START_MS
        .saturating_mul(1u64 << retries.min(20))
        .min(BACKOFF_MAX_MS);
    Duration::from_millis(ms)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn progress_loop(sender: Arc<Sender>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(PROGRESS_INTERVAL_MS));
    tick.tick().await;
    let mut last_ok = 0u64;
    let mut last_at = started;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let (ok, errors, retries, in_flight) = {
            let s = lock(&sender.stats);
            (s.events_ok, s.errors, s.retries, s.in_flight)
        };
        let rate = (ok - last_ok) as f64 / now.duration_since(last_at).as_secs_f64();
        eprintln!(
            "[{:>6.1}s] {ok} events ok, {rate:.0} events/s now, {errors} errors, {retries} retries, {in_flight} in flight",
            now.duration_since(started).as_secs_f64()
        );
        last_ok = ok;
        last_at = now;
    }
}

// ---------------------------------------------------------------------------------------
// Report

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentile (`q` in 0..=100) of an ascending slice.
fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    let n = sorted.len();
    let rank = ((q / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

fn latency_summary(latencies_us: &mut [u64]) -> Option<Latency> {
    latencies_us.sort_unstable();
    let ms = |q: f64| percentile(latencies_us, q).map(|us| us as f64 / 1000.0);
    Some(Latency {
        p50: ms(50.0)?,
        p90: ms(90.0)?,
        p99: ms(99.0)?,
        max: ms(100.0)?,
    })
}

struct Report {
    target: Target,
    url: String,
    concurrency: u32,
    batch_size: u32,
    rate: Option<f64>,
    gzip: bool,
    stats: Stats,
    elapsed: Duration,
    latency: Option<Latency>,
    dispatch: DispatchResult,
}

impl Report {
    fn new(args: &LoadArgs, mut stats: Stats, elapsed: Duration, dispatch: DispatchResult) -> Self {
        let latency = latency_summary(&mut stats.latencies_us);
        Report {
            target: args.target,
            url: args.url.clone(),
            concurrency: args.concurrency,
            batch_size: args.batch_size,
            rate: args.rate,
            gzip: args.gzip,
            stats,
            elapsed,
            latency,
            dispatch,
        }
    }

    fn events_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.events_ok as f64 / secs
        } else {
            0.0
        }
    }

    fn json(&self) -> Value {
        let round = |x: f64, places: i32| {
            let f = 10f64.powi(places);
            (x * f).round() / f
        };
        let latency = self.latency.map_or(Value::Null, |l| {
            json!({
                "p50": round(l.p50, 3), "p90": round(l.p90, 3),
                "p99": round(l.p99, 3), "max": round(l.max, 3),
            })
        });
        let s = &self.stats;
        json!({
            "target": self.target.name(),
            "events_sent": s.events_sent,
            "events_ok": s.events_ok,
            "requests": s.requests,
            "errors": s.errors,
            "retries": s.retries,
            "elapsed_s": round(self.elapsed.as_secs_f64(), 3),
            "events_per_s": round(self.events_per_s(), 1),
            "latency_ms": latency,
            "events_rejected": s.events_rejected,
            "events_deduplicated": s.events_deduplicated,
            "concurrency": self.concurrency,
            "batch_size": self.batch_size,
            "target_rate": self.rate,
            "gzip": self.gzip,
            "max_schedule_lag_ms": self.rate.map(|_| round(self.dispatch.max_lag.as_secs_f64() * 1000.0, 3)),
            "interrupted": self.dispatch.interrupted,
        })
    }

    fn human(&self) -> String {
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let mut out = String::new();
        let mut line = |l: String| {
            out.push_str(&l);
            out.push('\n');
        };
        line(format!(
            "target      {} at {}{}",
            self.target.name(),
            self.url,
            if self.dispatch.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ));
        line(format!(
            "load        concurrency {}, {} events/request{}, {}",
            self.concurrency,
            self.batch_size,
            if self.gzip { ", gzip" } else { "" },
            self.rate.map_or("unpaced".to_owned(), |r| format!(
                "paced at {r:.0} events/s"
            )),
        ));
        line(format!(
            "events      {} sent, {} ok ({} of them duplicates), {} rejected",
            s.events_sent, s.events_ok, s.events_deduplicated, s.events_rejected
        ));
        line(format!(
            "requests    {} ({} retries, {} failed batches)",
            s.requests, s.retries, s.errors
        ));
        line(format!(
            "throughput  {:.0} events/s, {:.1} MiB/s over {:.2} s",
            self.events_per_s(),
            if secs > 0.0 {
                s.bytes_ok as f64 / secs / (1 << 20) as f64
            } else {
                0.0
            },
            secs
        ));
        match self.latency {
            Some(l) => line(format!(
                "latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                l.p50, l.p90, l.p99, l.max
            )),
            None => line("latency ms  (no successful request)".to_owned()),
        }
        if self.rate.is_some() {
            line(format!(
                "schedule    worst lag {:.1} ms behind the --rate schedule",
                self.dispatch.max_lag.as_secs_f64() * 1000.0
            ));
        }
        for e in &s.error_samples {
            line(format!("error       {e}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(target: Target, batch_size: u32, max_events: Option<u64>) -> PrepareOptions {
        PrepareOptions {
            target,
            batch_size,
            max_events,
            now_ms: 1_767_607_200_000,
        }
    }

    const EVENT: &str = r#"{"event":"signup","distinct_id":"user-42","timestamp":"2026-01-05T10:00:00Z","insert_id":"6f1c","properties":{"plan":"pro","n":{"a":[1,2]}}}"#;

    #[test]
    fn batches_cut_at_batch_size_with_a_short_tail() {
        let input = (0..7)
            .map(|i| format!("{{\"e\":{i}}}\n"))
            .collect::<String>();
        let p = prepare(input.as_bytes(), &opts(Target::Minim, 3, None)).unwrap();
        assert_eq!(p.events, 7);
        assert_eq!(p.batch_events, vec![3, 3, 1]);
        assert_eq!(p.bodies[0], b"{\"e\":0}\n{\"e\":1}\n{\"e\":2}\n");
        assert_eq!(p.bodies[2], b"{\"e\":6}\n");
    }

    #[test]
    fn batches_skip_blank_lines_and_trim_crlf() {
        let input = "{\"e\":0}\r\n\n   \n{\"e\":1}";
        let p = prepare(input.as_bytes(), &opts(Target::Minim, 10, None)).unwrap();
        assert_eq!(p.batch_events, vec![2]);
        assert_eq!(p.bodies[0], b"{\"e\":0}\n{\"e\":1}\n");
    }

    #[test]
    fn batches_respect_max_events() {
        let input = (0..10)
            .map(|i| format!("{{\"e\":{i}}}\n"))
            .collect::<String>();
        let p = prepare(input.as_bytes(), &opts(Target::Minim, 4, Some(6))).unwrap();
        assert_eq!(p.events, 6);
        assert_eq!(p.batch_events, vec![4, 2]);
    }

    #[test]
    fn exact_multiple_leaves_no_empty_batch() {
        let input = "{}\n{}\n{}\n{}\n";
        let p = prepare(input.as_bytes(), &opts(Target::Minim, 2, None)).unwrap();
        assert_eq!(p.batch_events, vec![2, 2]);
        let empty = prepare(&b""[..], &opts(Target::Minim, 2, None)).unwrap();
        assert!(empty.bodies.is_empty());
    }

    #[test]
    fn clickhouse_bodies_are_transformed_and_bad_lines_name_their_number() {
        let input = format!("{EVENT}\n{EVENT}\n");
        let p = prepare(input.as_bytes(), &opts(Target::Clickhouse, 10, None)).unwrap();
        let body = String::from_utf8(p.bodies[0].clone()).unwrap();
        assert_eq!(body.lines().count(), 2);
        assert!(
            body.lines()
                .all(|l| l.contains(r#""timestamp":"2026-01-05 10:00:00""#))
        );

        let bad = format!("{EVENT}\nnot json\n");
        let err = prepare(bad.as_bytes(), &opts(Target::Clickhouse, 10, None)).unwrap_err();
        assert!(format!("{err:#}").contains("input line 2"), "{err:#}");
    }

    #[test]
    fn clickhouse_line_stringifies_properties_and_normalizes_time() {
        let row: Value = serde_json::from_str(&clickhouse_line(EVENT, 0).unwrap()).unwrap();
        assert_eq!(row["event"], "signup");
        assert_eq!(row["distinct_id"], "user-42");
        assert_eq!(row["timestamp"], "2026-01-05 10:00:00");
        assert_eq!(row["insert_id"], "6f1c");
        let props = row["properties"].as_str().expect("properties is a string");
        let back: Value = serde_json::from_str(props).unwrap();
        assert_eq!(back, json!({"plan": "pro", "n": {"a": [1, 2]}}));
        assert_eq!(row.as_object().unwrap().len(), 5);
    }

    #[test]
    fn clickhouse_line_timestamp_forms() {
        let ts = |t: &str| {
            let line = format!(r#"{{"event":"e","distinct_id":"d","timestamp":{t}}}"#);
            let row: Value =
                serde_json::from_str(&clickhouse_line(&line, 1_767_607_200_000).unwrap()).unwrap();
            row["timestamp"].as_str().unwrap().to_owned()
        };
        assert_eq!(ts("1767607200"), "2026-01-05 10:00:00"); // epoch seconds
        assert_eq!(ts("1767607200123"), "2026-01-05 10:00:00"); // epoch milliseconds
        assert_eq!(ts("1767607200.9"), "2026-01-05 10:00:00"); // fractional seconds floor
        assert_eq!(
            ts(r#""2026-01-05T12:00:00.250+02:00""#),
            "2026-01-05 10:00:00"
        );
        assert_eq!(ts(r#""2026-01-05T10:00:00""#), "2026-01-05 10:00:00"); // zone-less = UTC
        assert_eq!(ts("null"), "2026-01-05 10:00:00"); // absent = now
        let no_ts = r#"{"event":"e","distinct_id":"d"}"#;
        let row: Value =
            serde_json::from_str(&clickhouse_line(no_ts, 1_767_607_200_000).unwrap()).unwrap();
        assert_eq!(row["timestamp"], "2026-01-05 10:00:00");
        assert_eq!(row["properties"], "{}");
        assert_eq!(row["insert_id"], "");
    }

    #[test]
    fn clickhouse_line_rejects_what_clickhouse_cannot_store() {
        for bad in [
            r#"[1,2]"#,
            r#"{"distinct_id":"d"}"#,
            r#"{"event":"e","distinct_id":"d","timestamp":"yesterday"}"#,
            r#"{"event":"e","distinct_id":"d","timestamp":-5}"#,
            r#"{"event":"e","distinct_id":"d","properties":[1]}"#,
        ] {
            assert!(clickhouse_line(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_summary_sorts_and_converts_to_ms() {
        let mut v = vec![3000, 1000, 2000, 10_000];
        let l = latency_summary(&mut v).unwrap();
        assert_eq!(
            l,
            Latency {
                p50: 2.0,
                p90: 10.0,
                p99: 10.0,
                max: 10.0
            }
        );
        assert!(latency_summary(&mut []).is_none());
    }

    #[test]
    fn minim_response_counts() {
        let ack = |accepted, rejected, deduplicated| Ack {
            accepted,
            rejected,
            deduplicated,
        };
        let ok = br#"{"accepted":10,"rejected":[]}"#;
        assert_eq!(parse_minim_response(ok, 10).unwrap(), ack(10, 0, 0));
        let two_bad = br#"{"accepted":8,"rejected":[{"index":1,"code":"x","message":"m"},{"index":4,"code":"x","message":"m"}]}"#;
        assert_eq!(parse_minim_response(two_bad, 10).unwrap(), ack(8, 2, 0));
        let dup = br#"{"accepted":10,"rejected":[],"deduplicated":3}"#;
        assert_eq!(parse_minim_response(dup, 10).unwrap(), ack(10, 0, 3));
        let no_accepted = br#"{"rejected":[{}]}"#;
        assert_eq!(parse_minim_response(no_accepted, 10).unwrap(), ack(9, 1, 0));
        assert!(parse_minim_response(b"ok", 10).is_err());
        assert!(parse_minim_response(br#"{"accepted":-1}"#, 10).is_err());
    }

    #[test]
    fn retry_wait_prefers_retry_after_and_backs_off_otherwise() {
        assert_eq!(retry_wait(Some("2"), 0), Duration::from_secs(2));
        assert_eq!(retry_wait(Some("0.5"), 3), Duration::from_millis(500));
        assert_eq!(
            retry_wait(Some("99999"), 0),
            Duration::from_millis(MAX_RETRY_AFTER_MS)
        );
        assert_eq!(retry_wait(None, 0), Duration::from_millis(BACKOFF_START_MS));
        assert_eq!(
            retry_wait(Some("soon"), 1),
            Duration::from_millis(2 * BACKOFF_START_MS)
        );
        assert_eq!(retry_wait(None, 40), Duration::from_millis(BACKOFF_MAX_MS));
    }

    #[test]
    fn schedule_spreads_batches_at_the_rate() {
        assert_eq!(schedule_offset(0, 1000.0), Duration::ZERO);
        assert_eq!(schedule_offset(500, 1000.0), Duration::from_millis(500));
        assert_eq!(schedule_offset(3000, 1000.0), Duration::from_secs(3));
    }

    #[test]
    fn urls_per_target() {
        assert_eq!(
            request_url("http://127.0.0.1:8080/", Target::Minim, "events").unwrap(),
            "http://127.0.0.1:8080/api/v1/events"
        );
        assert_eq!(
            request_url("http://h:8123", Target::Clickhouse, "db.events").unwrap(),
            "http://h:8123/?query=INSERT%20INTO%20db.events%20FORMAT%20JSONEachRow"
        );
        assert!(request_url("h:8123", Target::Clickhouse, "events").is_err());
    }

    #[test]
    fn gzip_round_trips() {
        let gz = gzip_bytes(b"hello\nworld\n").unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, b"hello\nworld\n");
    }
}
