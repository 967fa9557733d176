//! Throughput of `decode_native` on 10k realistic events (400-800 bytes each): JSON array,
//! NDJSON and gzip. Prints MB/s (of decompressed JSON) and events/s; asserts nothing.
//!
//! Run: `cargo bench -p minim-ingest --bench native_decode [-- NAME_FILTER]`

use std::io::Write;
use std::time::{Duration, Instant};

use minim_ingest::{BodyFormat, ContentEncoding, IngestLimits, decode_native};

const NOW: i64 = 1_767_607_200_000;
const EVENTS: usize = 10_000;

/// A tiny deterministic generator (xorshift) so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn event(r: &mut Rng, i: usize) -> String {
    let names = [
        "$pageview",
        "signup",
        "purchase",
        "button_clicked",
        "video_played",
        "search",
        "add_to_cart",
    ];
    let paths = [
        "/",
        "/pricing",
        "/blog/how-we-built-minim",
        "/docs/getting-started",
        "/checkout?step=2",
        "/app/dashboard",
    ];
    let browsers = ["Chrome", "Firefox", "Safari", "Edge", "Mobile Safari"];
    let oses = ["Windows", "Mac OS X", "iOS", "Android", "Linux"];
    let countries = ["US", "DE", "FR", "GB", "IN", "BR", "JP"];
    let referrers = [
        "https://www.google.com/",
        "https://news.ycombinator.com/",
        "$direct",
        "https://twitter.com/",
    ];
    let ts = NOW - 86_400_000 + r.below(86_400_000) as i64;
    let secs = ts / 1000;
    let (d, t) = (secs / 86_400, secs % 86_400);
    // 2026-01-04 is day 20457; keep dates within that day and the next for simplicity.
    let day = if d == 20_457 {
        "2026-01-04"
    } else {
        "2026-01-05"
    };
    let timestamp = format!(
        "{day}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        ts % 1000
    );
    let extra = if r.below(3) == 0 {
        format!(
            r#","items":[{{"sku":"SKU-{}","qty":{},"price":{}.99}},{{"sku":"SKU-{}","qty":1,"price":9.5}}],"coupon":null"#,
            r.below(9999),
            1 + r.below(4),
            r.below(200),
            r.below(9999)
        )
    } else {
        String::new()
    };
    format!(
        concat!(
            r#"{{"event":"{}","distinct_id":"user-{}","timestamp":"{}","insert_id":"{:016x}-{:04x}","#,
            r#""properties":{{"$current_url":"https://example.com{}","$pathname":"{}","$browser":"{}","#,
            r#""$browser_version":{}.0,"$os":"{}","$device_type":"{}","$screen_width":{},"$screen_height":{},"#,
            r#""$referrer":"{}","$lib":"minim-js","$lib_version":"1.4.2","country":"{}","plan":"{}","#,
            r#""utm_source":"newsletter","utm_campaign":"winter_launch_2026","session_id":"s-{:x}","#,
            r#""is_logged_in":{},"page_load_ms":{}{}}}}}"#
        ),
        r.pick(&names),
        r.below(50_000),
        timestamp,
        r.next(),
        i % 65_536,
        r.pick(&paths),
        r.pick(&paths),
        r.pick(&browsers),
        100 + r.below(30),
        r.pick(&oses),
        r.pick(&["Desktop", "Mobile", "Tablet"]),
        [1280, 1440, 1920, 390][r.below(4) as usize],
        [720, 900, 1080, 844][r.below(4) as usize],
        r.pick(&referrers),
        r.pick(&countries),
        r.pick(&["free", "pro", "team"]),
        r.next() % 0xffff_ffff,
        r.below(2) == 0,
        r.below(5000),
        extra,
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Best and median time of `decode_native` over repeated runs for about a second.
fn measure(
    name: &str,
    body: &[u8],
    json_bytes: usize,
    format: BodyFormat,
    encoding: ContentEncoding,
) {
    if !selected(name) {
        return;
    }
    let limits = IngestLimits::default();
    let check = decode_native(body, format, encoding, &limits, NOW).expect("decodes");
    assert_eq!(check.events.len(), EVENTS, "{:?}", check.rejected.first());
    let mut times = Vec::new();
    let start = Instant::now();
    // BENCH_RUNS=n: a fixed number of runs (for `perf stat` comparisons), else ~2 s.
    let fixed_runs: Option<usize> = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    while match fixed_runs {
        Some(n) => times.len() < n,
        None => start.elapsed() < Duration::from_secs(2) || times.len() < 5,
    } {
        let t = Instant::now();
        let d = decode_native(body, format, encoding, &limits, NOW).expect("decodes");
        times.push(t.elapsed());
        std::hint::black_box(d);
    }
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    let best = times[0].as_secs_f64();
    println!(
        "{name:<22} {:>8.1} MB/s  {:>10.0} events/s  (median {:>6.2} ms, best {:>6.2} ms, {} runs, body {:.1} MB)",
        json_bytes as f64 / median / 1e6,
        EVENTS as f64 / median,
        median * 1e3,
        best * 1e3,
        times.len(),
        body.len() as f64 / 1e6,
    );
}

/// Cargo passes `--bench`; other arguments select cases by exact name.
fn selected(name: &str) -> bool {
    let mut filters = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .peekable();
    filters.peek().is_none() || filters.any(|f| name == f)
}

fn main() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let events: Vec<String> = (0..EVENTS).map(|i| event(&mut r, i)).collect();
    let sizes: Vec<usize> = events.iter().map(String::len).collect();
    let array = format!("[{}]", events.join(","));
    let ndjson = events.join("\n");
    println!(
        "{EVENTS} events, {:.1} MB JSON, event size min {} / avg {} / max {} bytes",
        array.len() as f64 / 1e6,
        sizes.iter().min().unwrap(),
        sizes.iter().sum::<usize>() / EVENTS,
        sizes.iter().max().unwrap()
    );
    measure(
        "array",
        array.as_bytes(),
        array.len(),
        BodyFormat::JsonArray,
        ContentEncoding::Identity,
    );
    measure(
        "ndjson",
        ndjson.as_bytes(),
        ndjson.len(),
        BodyFormat::Ndjson,
        ContentEncoding::Identity,
    );
    let gz = gzip(array.as_bytes());
    measure(
        "array+gzip",
        &gz,
        array.len(),
        BodyFormat::JsonArray,
        ContentEncoding::Gzip,
    );

    // Reference points: what the building blocks cost on the same body.
    if !selected("reference") {
        return;
    }
    let t = Instant::now();
    for _ in 0..10 {
        let v: Vec<&serde_json::value::RawValue> = serde_json::from_str(&array).unwrap();
        std::hint::black_box(v);
    }
    println!(
        "{:<22} {:>8.1} MB/s",
        "(serde_json RawValue split)",
        array.len() as f64 * 10.0 / t.elapsed().as_secs_f64() / 1e6
    );
    let t = Instant::now();
    for _ in 0..10 {
        let v: serde_json::Value = serde_json::from_str(&array).unwrap();
        std::hint::black_box(v);
    }
    println!(
        "{:<22} {:>8.1} MB/s",
        "(serde_json Value)",
        array.len() as f64 * 10.0 / t.elapsed().as_secs_f64() / 1e6
    );
    let t = Instant::now();
    for _ in 0..10 {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        std::hint::black_box(out);
    }
    println!(
        "{:<22} {:>8.1} MB/s",
        "(gunzip alone)",
        array.len() as f64 * 10.0 / t.elapsed().as_secs_f64() / 1e6
    );
}
