#!/usr/bin/env python3
"""bench/query.py: the Python half of bench/query.sh (query latency, Minim vs DuckDB vs chDB).

The same four questions are asked of every engine, timed, and every answer is turned
into one canonical form (a dict of cells -> count, zero cells dropped) so that the
engines can be compared cell by cell.

Subcommands (query.sh drives them; each engine runs in its own process):
  load --engine duckdb|chdb --path P --file F [--append] --out J
        load one NDJSON file (as written by `minim gen`) into a DuckDB database file or
        a chDB (embedded ClickHouse) data directory; writes timing and size to J.
  run --engine minim|duckdb|chdb [--path P | --url U --project ID] --runs R --out J
        ask the four questions: once (the first, cold-ish run) and then R more times
        (warm runs); writes timings and canonical answers to J. Minim's API token comes
        from the environment variable MINIM_BENCH_TOKEN, never from the command line.
  report --work DIR [--meta TSV]
        compares the answers in DIR/run-*.json and prints the markdown report; exit 3
        on a mismatch (unless BENCH_ALLOW_MISMATCH=1).
  self-check [--file F | --minim BIN --events N] [--engines duckdb chdb]
        (also `--self-check`) checks DuckDB's and chDB's answers against a plain-Python
        brute force of the semantics below, on `minim gen` data plus hand-made edge
        cases (ties, window boundaries, range boundaries, missing properties).

The questions (dates are UTC, `to` inclusive, so the range is [FROM 00:00, TO + 1 day 00:00)):
  Q1 trends, `$pageview` total per day, broken down by `$country` (null when unset):
     cells (day, country) -> events.
  Q2 trends, `$pageview` unique users (distinct_id) per day, plus the distinct count
     over the whole range: cells ("day", day) and ("total",).
  Q3 funnel `$pageview -> signup -> purchase`, 7-day window, ClickHouse
     `windowFunnel(604800 s)` default mode per user: the furthest step reached by a chain
     whose first event is in range, where each later step's event is at or after the
     previous one (equal timestamps count) and at most 604800 s after the first (inclusive);
     later steps may fall after TO. cells ("step", i, event) -> users with level >= i.
  Q4 retention, `$pageview` -> `$pageview`, daily, 7 periods: a user's cohort is the day
     of their first `$pageview` in range; returned[k] = cohort users with a `$pageview`
     anywhere on day cohort + k (k = 0 is the cohort day; days after TO count).
     cells (cohort, "size") and (cohort, k).
"""

import argparse
import datetime as dt
import http.client
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import defaultdict

FROM = "2026-01-01"
TO = "2026-01-30"
WINDOW_S = 604800
PERIODS = 7
FUNNEL_STEPS = ["$pageview", "signup", "purchase"]
QUESTIONS = ["Q1", "Q2", "Q3", "Q4"]
TITLES = {
    "Q1": "Q1 daily `$pageview` trend by `$country`",
    "Q2": "Q2 daily unique users (`$pageview`)",
    "Q3": "Q3 funnel `$pageview → signup → purchase`, 7 days",
    "Q4": "Q4 daily retention, 7 periods",
}
DAY_MS = 86_400_000
EPOCH = dt.date(1970, 1, 1)


def day_ms(date_str):
    return (dt.date.fromisoformat(date_str) - EPOCH).days * DAY_MS


START_MS = day_ms(FROM)
END_MS = day_ms(TO) + DAY_MS  # exclusive
WINDOW_MS = WINDOW_S * 1000


def ms_to_sql(ms):
    """Epoch ms -> 'YYYY-MM-DD HH:MM:SS.fff' (UTC), for SQL literals."""
    t = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def day_label(ms):
    return (EPOCH + dt.timedelta(days=ms // DAY_MS)).isoformat()


def as_int(v):
    """Counts may come back as int, float or (ClickHouse JSON) string."""
    if isinstance(v, str):
        v = float(v) if "." in v or "e" in v.lower() else int(v)
    if isinstance(v, float):
        if v != int(v):
            raise ValueError(f"non-integral count {v!r}")
        v = int(v)
    return int(v)


def as_day(v):
    return v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v)[:10]


def log(msg):
    print(f"[query.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg, code=1):
    log(f"error: {msg}")
    sys.exit(code)


# ---------------------------------------------------------------------------------------
# Canonical cells. Keys are tuples of str/int/None; values non-zero ints.


def put(cells, key, n):
    n = as_int(n)
    if n:
        cells[key] = cells.get(key, 0) + n


def cells_to_json(cells):
    return sorted(([list(k), v] for k, v in cells.items()), key=lambda kv: sort_key(kv[0]))


def cells_from_json(rows):
    return {tuple(k): v for k, v in rows}


def sort_key(key):
    return tuple((0, "") if x is None else (1, f"{x:012d}") if isinstance(x, int) else (2, x) for x in key)


def canon_q1(rows):  # (day, country, n)
    cells = {}
    for day, country, n in rows:
        put(cells, (as_day(day), country), n)
    return cells


def canon_q2(rows):  # (day or None for the total, n)
    cells = {}
    for day, n in rows:
        put(cells, ("total",) if day is None else ("day", as_day(day)), n)
    return cells


def canon_q3(counts):  # [users at level >= 1, >= 2, ...]
    cells = {}
    for i, (event, n) in enumerate(zip(FUNNEL_STEPS, counts), start=1):
        put(cells, ("step", i, event), n)
    return cells


def canon_q4(rows):  # (cohort, k or -1 for the size, n)
    cells = {}
    for cohort, k, n in rows:
        k = as_int(k)
        put(cells, (as_day(cohort), "size") if k < 0 else (as_day(cohort), k), n)
    return cells


# ---------------------------------------------------------------------------------------
# DuckDB: one table with typed columns for what the questions touch (ts, event,
# distinct_id and `$country` extracted at load), the rest of the event kept as JSON.

DUCK_SQL = {}
_S, _E, _W = ms_to_sql(START_MS), ms_to_sql(END_MS), ms_to_sql(END_MS + WINDOW_MS)
_R = ms_to_sql(END_MS + PERIODS * DAY_MS)
DUCK_SQL["Q1"] = f"""
SELECT CAST(ts AS DATE) AS day, country, count(*) AS n
FROM events
WHERE event = '$pageview' AND ts >= TIMESTAMP '{_S}' AND ts < TIMESTAMP '{_E}'
GROUP BY day, country"""
DUCK_SQL["Q2"] = f"""
SELECT CASE WHEN grouping(day) = 0 THEN day END AS day, count(DISTINCT distinct_id) AS n
FROM (SELECT CAST(ts AS DATE) AS day, distinct_id FROM events
      WHERE event = '$pageview' AND ts >= TIMESTAMP '{_S}' AND ts < TIMESTAMP '{_E}')
GROUP BY GROUPING SETS ((day), ())"""
# Exact windowFunnel levels without a funnel aggregate: a chain t1 <= t2 <= t3 fits the
# window iff it fits with t1 = the latest first-step event at or before t2 (in range) and
# t3 = the earliest step-3 event at or after t2. So for every step-2 event: its latest
# first-step event at most the window before it (level 2), then the earliest step-3 event
# at or after it (level 3 if within the window of that t1). Level 1 is every user with a
# first-step event in range. The <= / >= let equal timestamps chain, as in ClickHouse.
# (Plain joins plus max/min: on this data they beat the equivalent ASOF joins, as each
# user signs up once; the join rows are that user's pageviews in the 7 days before.)
DUCK_SQL["Q3"] = f"""
WITH e1 AS (
    SELECT distinct_id, epoch_ms(ts) AS t FROM events
    WHERE event = '{FUNNEL_STEPS[0]}' AND ts >= TIMESTAMP '{_S}' AND ts < TIMESTAMP '{_E}'),
e2 AS (
    SELECT distinct_id, epoch_ms(ts) AS t FROM events
    WHERE event = '{FUNNEL_STEPS[1]}' AND ts >= TIMESTAMP '{_S}' AND ts <= TIMESTAMP '{_W}'),
e3 AS (
    SELECT distinct_id, epoch_ms(ts) AS t FROM events
    WHERE event = '{FUNNEL_STEPS[2]}' AND ts >= TIMESTAMP '{_S}' AND ts <= TIMESTAMP '{_W}'),
c2 AS (
    SELECT e2.distinct_id, e2.t AS t2, max(e1.t) AS t1
    FROM e2 JOIN e1 ON e2.distinct_id = e1.distinct_id AND e1.t <= e2.t AND e2.t - e1.t <= {WINDOW_MS}
    GROUP BY e2.distinct_id, e2.t),
c3 AS (
    SELECT c2.distinct_id, c2.t1, min(e3.t) AS t3
    FROM c2 LEFT JOIN e3 ON c2.distinct_id = e3.distinct_id AND e3.t >= c2.t2
    GROUP BY c2.distinct_id, c2.t1, c2.t2),
levels AS (
    SELECT distinct_id, max(CASE WHEN t3 - t1 <= {WINDOW_MS} THEN 3 ELSE 2 END) AS level
    FROM c3 GROUP BY distinct_id)
SELECT (SELECT count(DISTINCT distinct_id) FROM e1),
       count(*) FILTER (WHERE level >= 2), count(*) FILTER (WHERE level >= 3)
FROM levels"""
DUCK_SQL["Q4"] = f"""
WITH firsts AS (
    SELECT distinct_id, CAST(min(ts) AS DATE) AS cohort FROM events
    WHERE event = '$pageview' AND ts >= TIMESTAMP '{_S}' AND ts < TIMESTAMP '{_E}'
    GROUP BY distinct_id),
returns AS (
    SELECT DISTINCT distinct_id, CAST(ts AS DATE) AS day FROM events
    WHERE event = '$pageview' AND ts >= TIMESTAMP '{_S}' AND ts < TIMESTAMP '{_R}')
SELECT cohort, -1 AS k, count(*) AS n FROM firsts GROUP BY cohort
UNION ALL
SELECT f.cohort, r.day - f.cohort AS k, count(*) AS n
FROM firsts f JOIN returns r ON f.distinct_id = r.distinct_id
WHERE r.day >= f.cohort AND r.day < f.cohort + {PERIODS}
GROUP BY f.cohort, k"""

DUCK_DDL = """CREATE TABLE IF NOT EXISTS events (
    ts TIMESTAMP, event VARCHAR, distinct_id VARCHAR, country VARCHAR,
    insert_id VARCHAR, properties JSON)"""


def duck_insert_sql(path):
    lit = path.replace("'", "''")
    return f"""INSERT INTO events
SELECT CAST("timestamp" AS TIMESTAMP), event, distinct_id,
       json_extract_string(properties, '$."$country"'), insert_id, properties
FROM read_json('{lit}', format = 'newline_delimited',
    columns = {{event: 'VARCHAR', distinct_id: 'VARCHAR', "timestamp": 'VARCHAR',
               insert_id: 'VARCHAR', properties: 'JSON'}})"""


class DuckEngine:
    name = "duckdb"

    def __init__(self, path, read_only=False):
        import duckdb

        self.duckdb = duckdb
        self.path = path
        self.con = duckdb.connect(path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")

    def version(self):
        return f"DuckDB {self.duckdb.__version__}"

    def load(self, files, finish=True):
        self.con.execute(DUCK_DDL)
        for f in files:
            self.con.execute(duck_insert_sql(f))
        if finish:
            self.con.execute("CHECKPOINT")

    def rows(self):
        return self.con.execute("SELECT count(*) FROM events").fetchone()[0]

    def size_bytes(self):
        return sum(os.path.getsize(p) for p in (self.path, self.path + ".wal") if os.path.exists(p))

    def fetch(self, q):
        return self.con.execute(DUCK_SQL[q]).fetchall()

    def canon(self, q, rows):
        if q == "Q3":
            return canon_q3(rows[0])
        return {"Q1": canon_q1, "Q2": canon_q2, "Q4": canon_q4}[q](rows)

    def close(self):
        self.con.close()


# ---------------------------------------------------------------------------------------
# chDB (embedded ClickHouse): a MergeTree table ordered by (event, distinct_id, ts), the
# layout a ClickHouse user picks for per-event, per-user scans; `$country` extracted at
# load into LowCardinality(Nullable(String)), the whole properties object kept as String.

CH_DDL = """CREATE TABLE IF NOT EXISTS events (
    ts DateTime64(3, 'UTC'), event LowCardinality(String), distinct_id String,
    country LowCardinality(Nullable(String)), insert_id String, properties String)
ENGINE = MergeTree ORDER BY (event, distinct_id, ts)"""


def ch_ts(ms):
    return f"toDateTime64('{ms_to_sql(ms)}', 3, 'UTC')"


CH_SQL = {}
CH_SQL["Q1"] = f"""
SELECT toString(toDate(ts)) AS day, country, count() AS n
FROM events
WHERE event = '$pageview' AND ts >= {ch_ts(START_MS)} AND ts < {ch_ts(END_MS)}
GROUP BY day, country"""
CH_SQL["Q2"] = f"""
SELECT if(grouping(day) = 0, toString(day), NULL) AS d, uniqExact(distinct_id) AS n
FROM (SELECT toDate(ts) AS day, distinct_id FROM events
      WHERE event = '$pageview' AND ts >= {ch_ts(START_MS)} AND ts < {ch_ts(END_MS)})
GROUP BY GROUPING SETS ((day), ())"""
# windowFunnel accepts only unsigned integers, Date and DateTime as the timestamp (not
# DateTime64), and its window is in the timestamp's unit: epoch milliseconds here.
CH_SQL["Q3"] = f"""
SELECT countIf(level >= 1), countIf(level >= 2), countIf(level >= 3)
FROM (
    SELECT distinct_id,
           windowFunnel({WINDOW_MS})(toUInt64(toUnixTimestamp64Milli(ts)),
               event = '{FUNNEL_STEPS[0]}' AND ts < {ch_ts(END_MS)},
               event = '{FUNNEL_STEPS[1]}', event = '{FUNNEL_STEPS[2]}') AS level
    FROM events
    WHERE event IN ('{FUNNEL_STEPS[0]}', '{FUNNEL_STEPS[1]}', '{FUNNEL_STEPS[2]}')
      AND ts >= {ch_ts(START_MS)} AND ts <= {ch_ts(END_MS + WINDOW_MS)}
    GROUP BY distinct_id)"""
# One pass per user: first start day in range, and the distinct days with a return event.
CH_SQL["Q4"] = f"""
SELECT toString(cohort) AS c, k, count() AS n
FROM (
    SELECT toDate(minIf(ts, ts < {ch_ts(END_MS)})) AS cohort,
           groupUniqArray(toDate(ts)) AS days
    FROM events
    WHERE event = '$pageview' AND ts >= {ch_ts(START_MS)} AND ts < {ch_ts(END_MS + PERIODS * DAY_MS)}
    GROUP BY distinct_id
    HAVING countIf(ts < {ch_ts(END_MS)}) > 0)
ARRAY JOIN arrayConcat([-1], arrayFilter(x -> x >= 0 AND x < {PERIODS},
                                         arrayMap(d -> toInt32(d - cohort), days))) AS k
GROUP BY c, k"""
# Q4's SQL uses one event for start and return (as the benchmark's question does).


def ch_insert_sql(path):
    lit = path.replace("\\", "\\\\").replace("'", "\\'")
    return f"""INSERT INTO events
SELECT parseDateTime64BestEffort(timestamp, 3, 'UTC'), event, distinct_id,
       JSONExtract(properties, '$country', 'Nullable(String)'), insert_id, properties
FROM file('{lit}', JSONEachRow,
          'event String, distinct_id String, timestamp String, insert_id String, properties String')
SETTINGS input_format_json_read_objects_as_strings = 1"""


class ChEngine:
    name = "chdb"

    def __init__(self, path, read_only=False):
        import chdb
        from chdb import session

        self.chdb = chdb
        self.path = path
        self.sess = session.Session(path)

    def q(self, sql):
        res = self.sess.query(sql, "JSONCompact")
        text = res.data() if hasattr(res, "data") else str(res)
        return json.loads(text)["data"] if text.strip() else []

    def version(self):
        return f"chDB {self.chdb.__version__} (ClickHouse {self.q('SELECT version()')[0][0]})"

    def load(self, files, finish=True):
        self.q(CH_DDL)
        for f in files:
            self.q(ch_insert_sql(os.path.abspath(f)))
        if finish:
            self.q("OPTIMIZE TABLE events FINAL")

    def rows(self):
        return as_int(self.q("SELECT count() FROM events")[0][0])

    def size_bytes(self):
        r = self.q("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'events' "
                   "AND database = currentDatabase()")
        return as_int(r[0][0] or 0)

    def fetch(self, q):
        return self.q(CH_SQL[q])

    def canon(self, q, rows):
        if q == "Q3":
            return canon_q3(rows[0])
        return {"Q1": canon_q1, "Q2": canon_q2, "Q4": canon_q4}[q](rows)

    def close(self):
        self.sess.close()


# ---------------------------------------------------------------------------------------
# Minim, over HTTP: one kept-alive connection, timed from sending the request to having
# read the whole response body.

MINIM_BODIES = {
    "Q1": {"kind": "trends", "from": FROM, "to": TO, "interval": "day",
           "series": [{"event": "$pageview", "math": "total"}],
           "breakdown": "$country", "breakdown_limit": 1000},
    "Q2": {"kind": "trends", "from": FROM, "to": TO, "interval": "day",
           "series": [{"event": "$pageview", "math": "unique_users"}]},
    "Q3": {"kind": "funnel", "from": FROM, "to": TO,
           "steps": [{"event": e} for e in FUNNEL_STEPS], "window_seconds": WINDOW_S},
    "Q4": {"kind": "retention", "from": FROM, "to": TO, "start_event": "$pageview",
           "return_event": "$pageview", "period": "day", "periods": PERIODS},
}


class MinimError(Exception):
    pass


class MinimEngine:
    name = "minim"

    def __init__(self, url, project, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.path = f"/api/v1/projects/{urllib.parse.quote(project, safe='')}/query"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.conn = None

    def version(self):
        return "Minim"

    def _post(self, body):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=3600)
            try:
                self.conn.request("POST", self.path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest):
                # The server closed the kept-alive connection between requests: reconnect
                # once (the retried request is the one timed).
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
            except ConnectionRefusedError as e:
                raise MinimError(f"cannot connect to Minim at {self.host}:{self.port}: {e}")
        raise AssertionError("unreachable")

    def fetch(self, q):
        body = json.dumps(MINIM_BODIES[q]).encode()
        status, data = self._post(body)
        if status != 200:
            snippet = data[:500].decode("utf-8", "replace") or "(empty body)"
            hint = ""
            if status == 404:
                hint = ("\n  This minim binary has no query endpoint (or not this route): build one that "
                        "has it (BENCH_BUILD=1 or cargo build --release -p minim), or leave Minim out "
                        "with BENCH_ENGINES=\"duckdb chdb\".")
            elif status in (401, 403):
                hint = "\n  The API token was refused (it is created with `minim token create --role analyst`)."
            raise MinimError(f"Minim answered HTTP {status} to POST {self.path} ({q}): {snippet}{hint}")
        return data

    def canon(self, q, data):
        try:
            doc = json.loads(data)
            return self._canon(q, doc)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise MinimError(f"{q}: cannot read Minim's response ({type(e).__name__}: {e}): "
                             f"{data[:500].decode('utf-8', 'replace')}")

    def _canon(self, q, doc):
        if q in ("Q1", "Q2"):
            cells = {}
            series = doc["series"]
            for s in series:
                if len(s["labels"]) != len(s["data"]):
                    raise ValueError(f"labels and data differ in length in series {s.get('breakdown_value')!r}")
                for label, n in zip(s["labels"], s["data"]):
                    put(cells, (label, s["breakdown_value"]) if q == "Q1" else ("day", label), n)
            if q == "Q2":
                if len(series) != 1:
                    raise ValueError(f"expected one series, got {len(series)}")
                put(cells, ("total",), series[0]["total"])
            elif any(s["breakdown_value"] == "$other" for s in series):
                log("warning: Minim merged breakdown values into \"$other\" (breakdown_limit too low?)")
            return cells
        if q == "Q3":
            steps = doc["steps"]
            if [s["event"] for s in steps] != FUNNEL_STEPS:
                raise ValueError(f"steps are {[s['event'] for s in steps]}")
            return canon_q3([s["count"] for s in steps])
        cells = {}
        for c in doc["cohorts"]:
            put(cells, (c["cohort"], "size"), c["size"])
            for k, n in enumerate(c["returned"]):
                put(cells, (c["cohort"], k), n)
        return cells

    def close(self):
        if self.conn is not None:
            self.conn.close()


# ---------------------------------------------------------------------------------------
# Subcommands


def open_engine(args, read_only):
    if args.engine == "duckdb":
        return DuckEngine(args.path, read_only=read_only)
    if args.engine == "chdb":
        return ChEngine(args.path, read_only=read_only)
    if args.engine == "minim":
        token = os.environ.get("MINIM_BENCH_TOKEN", "")
        if not token:
            die("MINIM_BENCH_TOKEN is not set")
        return MinimEngine(args.url, args.project, token)
    die(f"unknown engine {args.engine}")


def cmd_load(args):
    eng = open_engine(args, read_only=False)
    t0 = time.perf_counter()
    eng.load(args.file, finish=not args.no_finish)
    elapsed = time.perf_counter() - t0
    out = {"engine": eng.name, "version": eng.version(), "load_s": round(elapsed, 3),
           "rows": eng.rows(), "size_bytes": eng.size_bytes()}
    eng.close()
    if args.out:
        prev = {}
        if args.append and os.path.exists(args.out):
            with open(args.out) as f:
                prev = json.load(f)
        out["load_s"] = round(out["load_s"] + prev.get("load_s", 0), 3)
        with open(args.out, "w") as f:
            json.dump(out, f)
    log(f"{eng.name}: loaded in {elapsed:.1f}s; {out['rows']} rows, {out['size_bytes'] / 2**20:.0f} MiB")


def time_question(eng, q):
    t0 = time.perf_counter()
    raw = eng.fetch(q)
    ms = (time.perf_counter() - t0) * 1000
    return ms, eng.canon(q, raw)


def cmd_run(args):
    eng = open_engine(args, read_only=True)
    out = {"engine": eng.name, "version": eng.version(), "runs": args.runs, "timings": {},
           "results": {}, "unstable": []}
    try:
        for q in args.questions:
            first_ms, cells = time_question(eng, q)
            warm = []
            for _ in range(args.runs):
                ms, again = time_question(eng, q)
                warm.append(round(ms, 3))
                if again != cells:
                    out["unstable"].append(q)
            out["timings"][q] = {"first_ms": round(first_ms, 3), "warm_ms": warm}
            out["results"][q] = cells_to_json(cells)
            med = statistics.median(warm) if warm else first_ms
            log(f"{eng.name} {q}: first {first_ms:.1f} ms, warm median {med:.1f} ms ({len(cells)} cells)")
    except MinimError as e:
        die(str(e), 2)
    if eng.name != "minim":
        out["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["size_bytes"] = eng.size_bytes()
    eng.close()
    with open(args.out, "w") as f:
        json.dump(out, f)


LABEL = {"minim": "Minim", "duckdb": "DuckDB", "chdb": "chDB"}


def fmt_key(key):
    return "(" + ", ".join("null" if x is None else str(x) for x in key) + ")"


def compare(results, engines):
    """-> list of (question, [lines]) for every question where the engines disagree."""
    problems = []
    for q in QUESTIONS:
        have = [e for e in engines if q in results[e]["results"]]
        if len(have) < 2:
            continue
        cells = {e: cells_from_json(results[e]["results"][q]) for e in have}
        ref = have[0]
        lines = []
        for other in have[1:]:
            keys = sorted(set(cells[ref]) | set(cells[other]), key=sort_key)
            diff = [k for k in keys if cells[ref].get(k, 0) != cells[other].get(k, 0)]
            if diff:
                lines.append(f"{LABEL[ref]} vs {LABEL[other]}: {len(diff)} of {len(keys)} cells differ; first:")
                for k in diff[:10]:
                    lines.append(f"    {fmt_key(k)}: {LABEL[ref]} {cells[ref].get(k, 0)}, "
                                 f"{LABEL[other]} {cells[other].get(k, 0)}")
        if lines:
            problems.append((q, lines))
    for e in engines:
        for q in results[e].get("unstable", []):
            problems.append((q, [f"{LABEL[e]} gave different answers on repeated runs"]))
    return problems


def fmt_ms(x):
    if x is None:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def mib(b):
    return "–" if b in (None, "", "-") else f"{float(b) / 2**20:,.0f}"


def cmd_report(args):
    meta = {}
    if args.meta and os.path.exists(args.meta):
        with open(args.meta) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    meta[k] = v
    engines = [e for e in meta.get("engines", "minim duckdb chdb").split() if e in LABEL]
    results, loads = {}, {}
    for e in engines:
        p = os.path.join(args.work, f"run-{e}.json")
        if os.path.exists(p):
            with open(p) as f:
                results[e] = json.load(f)
        p = os.path.join(args.work, f"load-{e}.json")
        if os.path.exists(p):
            with open(p) as f:
                loads[e] = json.load(f)
    engines = [e for e in engines if e in results]
    if not engines:
        die("no results to report")

    def stats(e, q):
        t = results[e]["timings"].get(q)
        if not t:
            return None
        warm = t["warm_ms"] or [t["first_ms"]]
        return {"first": t["first_ms"], "min": min(warm), "median": statistics.median(warm)}

    problems = compare(results, engines)
    lines = []
    w = lines.append
    n = meta.get("events", "?")
    w(f"### Queries: {dt.datetime.now(dt.timezone.utc).date()}, {int(n):,} events" if n.isdigit()
      else f"### Queries: {n} events")
    w("")
    w(f"Machine: {meta.get('machine', '?')}. 1-minute load average before the run: {meta.get('loadavg', '?')}.")
    vers = [meta.get("minim_version", "Minim")] if "minim" in engines else []
    vers += [results[e]["version"] for e in engines if e != "minim"]
    w(f"Versions: {', '.join(vers)}. Data: {meta.get('data', '?')}.")
    w("")
    w(f"Median of {results[engines[0]]['runs']} warm runs, in ms (lower is better)"
      + ("; ratios > 1 mean Minim is slower." if "minim" in engines else "."))
    w("")
    head = ["question"] + [f"{LABEL[e]} ms" for e in ["minim", "duckdb", "chdb"] if e in engines]
    peers = [e for e in ["duckdb", "chdb"] if e in engines]
    if "minim" in engines:
        head += [f"Minim/{LABEL[p]}" for p in peers]
    w("| " + " | ".join(head) + " |")
    w("|---|" + "---:|" * (len(head) - 1))
    for q in QUESTIONS:
        row = [TITLES[q]]
        med = {}
        for e in ["minim", "duckdb", "chdb"]:
            if e in engines:
                s = stats(e, q)
                med[e] = s and s["median"]
                row.append(fmt_ms(med[e]))
        if "minim" in engines:
            for p in peers:
                a, b = med.get("minim"), med.get(p)
                row.append(f"{a / b:.2f}" if a and b else "–")
        w("| " + " | ".join(row) + " |")
    w("")
    w("First (cold-ish) run and fastest warm run, ms:")
    w("")
    head = ["question"] + [f"{LABEL[e]} first / min" for e in ["minim", "duckdb", "chdb"] if e in engines]
    w("| " + " | ".join(head) + " |")
    w("|---|" + "---:|" * (len(head) - 1))
    for q in QUESTIONS:
        row = [q]
        for e in ["minim", "duckdb", "chdb"]:
            if e in engines:
                s = stats(e, q)
                row.append(f"{fmt_ms(s['first'])} / {fmt_ms(s['min'])}" if s else "–")
        w("| " + " | ".join(row) + " |")
    w("")
    w("| engine | load s | data on disk MiB | peak RSS MiB | RSS after queries MiB | storage |")
    w("|---|---:|---:|---:|---:|---|")
    for e in ["minim", "duckdb", "chdb"]:
        if e not in engines:
            continue
        if e == "minim":
            w(f"| Minim | {meta.get('minim_load_s', '–')} | {mib(meta.get('minim_disk_bytes'))} | "
              f"{mib(meta.get('minim_hwm_bytes'))} | {mib(meta.get('minim_rss_bytes'))} | "
              f"{meta.get('minim_storage', '–')} |")
        else:
            ld = loads.get(e, {})
            rss = results[e].get("peak_rss_kb")
            storage = ("one table: ts TIMESTAMP, event, distinct_id, country (`$country` extracted at load) "
                       "VARCHAR, insert_id, properties JSON; checkpointed" if e == "duckdb" else
                       "MergeTree ORDER BY (event, distinct_id, ts): ts DateTime64(3), event "
                       "LowCardinality(String), distinct_id String, country LowCardinality(Nullable(String)) "
                       "extracted at load, insert_id, properties String; OPTIMIZE FINAL after load")
            load_s = f"{ld['load_s']:.1f}" if "load_s" in ld else "–"
            w(f"| {LABEL[e]} | {load_s} | {mib(results[e].get('size_bytes', ld.get('size_bytes')))} | "
              f"{mib(rss * 1024) if rss else '–'} | – | {storage} |")
    w("")
    w("- Questions: `from` 2026-01-01, `to` 2026-01-30 (UTC, inclusive). Q1 `trends` total by "
      "`$country` (`breakdown_limit` 1000, nulls kept); Q2 `trends` `unique_users` per day plus the "
      "range total; Q3 `funnel` with `window_seconds` 604800 (ClickHouse `windowFunnel` default mode); "
      "Q4 `retention` start = return = `$pageview`, `period` day, 7 periods.")
    w(("- Minim is timed over HTTP on loopback, one kept-alive connection, from sending the request to "
       "reading the whole JSON body. " if "minim" in engines else "- ") + "DuckDB and chDB run in-process (Python), timed from submitting the "
      "SQL to having the rows as Python values. Each question: one first run (reported apart), then "
      "the warm runs; every engine queries from a fresh process"
      + (" (Minim restarted after loading, so it reads flushed segments)" if meta.get("minim_restarted") == "1"
         else "")
      + (f"; Minim is first queried once its background compaction has stopped ({meta['minim_settle_s']} s "
         "after start), as the peers are after CHECKPOINT / OPTIMIZE FINAL" if meta.get("minim_settle_s") else "")
      + ".")
    w("- Load s: " + ("for Minim the sending time of `minim load` (it builds the request bodies before "
                      "its clock starts; the restart is not included), " if "minim" in engines else "")
      + "for DuckDB and chDB the whole INSERT from the NDJSON file "
      "including parsing and the CHECKPOINT / OPTIMIZE FINAL. Loading is not what this benchmark measures.")
    w("- Peak RSS: " + ("Minim's is the server's VmHWM after the queries (includes loading if it was not "
                        "restarted); " if "minim" in engines else "") + "DuckDB's and chDB's is the querying Python process's maxrss (interpreter included).")
    w("- The SQL for DuckDB and chDB is in `bench/query.py`: Q3 is `windowFunnel` over epoch "
      "milliseconds in chDB and an exact join equivalent in DuckDB; Q4 is one GROUP BY per user plus "
      "ARRAY JOIN in chDB and a join of first days with distinct (user, day) returns in DuckDB.")
    if meta.get("note"):
        w(f"- {meta['note']}")
    if problems:
        w("")
        w("**MISMATCH: the engines do not agree**")
        for q, ls in problems:
            w(f"- {q}:")
            for line in ls:
                w(f"  {line}")
    else:
        ref = results[engines[0]]["results"]
        sizes = ", ".join(f"{q}: {len(ref[q])} cells" for q in QUESTIONS if q in ref)
        w(f"- All engines ({', '.join(LABEL[e] for e in engines)}) returned identical answers ({sizes}).")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.work, "report.md"), "w") as f:
        f.write(text)
    print(text, end="")
    if problems:
        log("MISMATCH between engines (details in the report above)")
        if os.environ.get("BENCH_ALLOW_MISMATCH", "0") != "1":
            sys.exit(3)


# ---------------------------------------------------------------------------------------
# Self-check: plain-Python brute force of the four questions' semantics.


def parse_ts(s):
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)


def read_events(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                props = o.get("properties") or {}
                c = props.get("$country")
                out.append((o["event"], o["distinct_id"], parse_ts(o["timestamp"]),
                            None if c is None else c if isinstance(c, str) else json.dumps(c)))
    return out


def brute_q1(evs):
    cells = {}
    for e, _, t, c in evs:
        if e == "$pageview" and START_MS <= t < END_MS:
            put(cells, (day_label(t), c), 1)
    return cells


def brute_q2(evs):
    per_day, total = defaultdict(set), set()
    for e, u, t, _ in evs:
        if e == "$pageview" and START_MS <= t < END_MS:
            per_day[day_label(t)].add(u)
            total.add(u)
    cells = {}
    for d, users in per_day.items():
        put(cells, ("day", d), len(users))
    put(cells, ("total",), len(total))
    return cells


def funnel_level_exhaustive(times_by_step):
    """Longest chain by trying every combination (tiny inputs only)."""
    best = 0

    def extend(level, first, prev):
        nonlocal best
        best = max(best, level)
        if level == len(times_by_step):
            return
        for t in times_by_step[level]:
            if t >= prev and t - first <= WINDOW_MS:
                extend(level + 1, first, t)

    for t1 in times_by_step[0]:
        if START_MS <= t1 < END_MS:
            extend(1, t1, t1)
    return best


def funnel_level_clickhouse(entries):
    """A re-statement of ClickHouse's windowFunnel scan (default mode): entries
    (timestamp, step) sorted by timestamp then step; per step the (first, last) time of
    the best chain reaching it; a step's event extends the previous step's chain if within
    the window of that chain's first event. The first step's condition includes the range."""
    chains = [None] * len(FUNNEL_STEPS)
    for t, step in sorted(entries):
        if step == 0:
            chains[0] = (t, t)
        elif chains[step - 1] is not None and t <= chains[step - 1][0] + WINDOW_MS:
            chains[step] = (chains[step - 1][0], t)
            if step == len(FUNNEL_STEPS) - 1:
                return len(FUNNEL_STEPS)
    return max((i + 1 for i, c in enumerate(chains) if c is not None), default=0)


def brute_q3(evs):
    per_user = defaultdict(lambda: [[] for _ in FUNNEL_STEPS])
    for e, u, t, _ in evs:
        for i, s in enumerate(FUNNEL_STEPS):
            if e == s:
                per_user[u][i].append(t)
    counts = [0] * len(FUNNEL_STEPS)
    disagree = 0
    for u, times in per_user.items():
        level = funnel_level_exhaustive(times)
        entries = [(t, i) for i, ts in enumerate(times) for t in ts
                   if i > 0 or START_MS <= t < END_MS]
        if funnel_level_clickhouse(entries) != level:
            disagree += 1
        for i in range(level):
            counts[i] += 1
    return canon_q3(counts), disagree


def brute_q4(evs):
    first, days = {}, defaultdict(set)
    for e, u, t, _ in evs:
        if e != "$pageview":
            continue
        days[u].add(t // DAY_MS)
        if START_MS <= t < END_MS:
            first[u] = min(first.get(u, t), t)
    cells = {}
    for u, t in first.items():
        cohort = t // DAY_MS
        label = day_label(t)
        put(cells, (label, "size"), 1)
        for k in range(PERIODS):
            if cohort + k in days[u]:
                put(cells, (label, k), 1)
    return cells


def edge_cases():
    """Hand-made events for the cases `minim gen` data rarely or never has."""
    S, E, W, D = START_MS, END_MS, WINDOW_MS, DAY_MS
    out = []

    def ev(user, event, t, **props):
        ts = (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        p = {"$country": "EDGE"}
        p.update({k.replace("dollar_", "$"): v for k, v in props.items()})
        if p.get("$country") == "__unset__":
            del p["$country"]
        out.append({"event": event, "distinct_id": user, "timestamp": ts,
                    "insert_id": f"edge-{len(out):06d}", "properties": p})

    t = S + 5 * D + 3_600_000
    # Funnel: all three steps at one millisecond, written in reverse order -> level 3.
    ev("edge-tie", "purchase", t), ev("edge-tie", "signup", t), ev("edge-tie", "$pageview", t)
    # Step 2 exactly at the window's end counts; step 3 one ms later does not -> level 2.
    ev("edge-window", "$pageview", t), ev("edge-window", "signup", t + W), ev("edge-window", "purchase", t + W + 1)
    # Last millisecond of the range starts a chain that ends after `to` -> level 3.
    ev("edge-late", "$pageview", E - 1), ev("edge-late", "signup", E + 2 * D), ev("edge-late", "purchase", E + W - 1)
    # First step just after the range -> not in the funnel at all.
    ev("edge-after", "$pageview", E), ev("edge-after", "signup", E + 1), ev("edge-after", "purchase", E + 2)
    # First step just before the range, the rest in range -> not in the funnel.
    ev("edge-before", "$pageview", S - 1), ev("edge-before", "signup", S + 1), ev("edge-before", "purchase", S + 2)
    # A later first step restarts the window, but its own chain needs a signup after it -> level 2.
    ev("edge-restart", "$pageview", t), ev("edge-restart", "signup", t + D),
    ev("edge-restart", "$pageview", t + 2 * D), ev("edge-restart", "purchase", t + 7 * D + 1)
    # Purchase before signup -> level 2; signup before the only pageview -> level 1.
    ev("edge-order", "$pageview", t), ev("edge-order", "purchase", t + 1), ev("edge-order", "signup", t + 2)
    ev("edge-order2", "signup", t - 1), ev("edge-order2", "$pageview", t), ev("edge-order2", "purchase", t + 1)
    # Two chains, the earlier one complete, the later one not -> level 3.
    ev("edge-two", "$pageview", t), ev("edge-two", "signup", t + 10), ev("edge-two", "purchase", t + 20),
    ev("edge-two", "$pageview", t + D)
    # Retention: pageviews before the range are ignored (cohort = Jan 3, the first in
    # range); the cohort day counts once, cohort+6 counts, cohort+7 does not.
    ev("edge-ret", "$pageview", S - 3 * D), ev("edge-ret", "$pageview", S - 1),
    ev("edge-ret", "$pageview", S + 2 * D + 5), ev("edge-ret", "$pageview", S + 2 * D + 1),
    ev("edge-ret", "$pageview", S + 8 * D), ev("edge-ret", "$pageview", S + 9 * D + 7)
    # Cohort on the last day; returns after `to` on days +1 and +6.
    ev("edge-ret2", "$pageview", E - D), ev("edge-ret2", "$pageview", E + 1), ev("edge-ret2", "$pageview", E + 6 * D - 1)
    # Breakdown: property unset, JSON null, empty string -> null, null, "".
    ev("edge-bd", "$pageview", t, dollar_country="__unset__")
    ev("edge-bd", "$pageview", t + 1, dollar_country=None)
    ev("edge-bd", "$pageview", t + 2, dollar_country="")
    return out


def minim_shaped(brute):
    """The brute-force answers in the response shapes of CONTRACT.md (zero-filled labels,
    one series per breakdown value, every cohort of the range listed)."""
    days = [day_label(t) for t in range(START_MS, END_MS, DAY_MS)]
    by_country = defaultdict(dict)
    for (day, country), n in brute["Q1"].items():
        by_country[country][day] = n
    q1 = [{"event": "$pageview", "breakdown_value": c, "labels": days,
           "data": [m.get(d, 0) for d in days], "total": sum(m.values())}
          for c, m in sorted(by_country.items(), key=lambda kv: -sum(kv[1].values()))]
    q2 = [{"event": "$pageview", "breakdown_value": None, "labels": days,
           "data": [brute["Q2"].get(("day", d), 0) for d in days], "total": brute["Q2"].get(("total",), 0)}]
    q3 = [{"event": e, "count": brute["Q3"].get(("step", i, e), 0), "median_seconds_from_previous": None}
          for i, e in enumerate(FUNNEL_STEPS, start=1)]
    q4 = [{"cohort": d, "size": brute["Q4"].get((d, "size"), 0),
           "returned": [brute["Q4"].get((d, k), 0) for k in range(PERIODS)]} for d in days]
    return {"Q1": {"series": q1}, "Q2": {"series": q2}, "Q3": {"steps": q3}, "Q4": {"cohorts": q4}}


def check_minim_client(brute):
    """Runs MinimEngine (HTTP, keep-alive, canonical form) against a stand-in server that
    answers with the brute force in Minim's response shapes. -> list of failures."""
    import http.server
    import threading

    answers = minim_shaped(brute)
    token = "mat_selfcheck"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            q = next((k for k, v in MINIM_BODIES.items() if v == body), None)
            ok = self.path == "/api/v1/projects/p_check/query" and \
                self.headers.get("Authorization") == f"Bearer {token}" and q
            data = json.dumps(answers[q] if ok else {"error": {"code": "not_found", "message": "no"}}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    failures = []
    try:
        eng = MinimEngine(f"http://127.0.0.1:{srv.server_address[1]}", "p_check", token)
        for q in QUESTIONS:
            for _ in range(2):  # the second request reuses the connection
                got = eng.canon(q, eng.fetch(q))
            if got != brute[q]:
                failures.append(f"minim client {q}: canonical form differs from the brute force")
        eng.close()
        log("minim client: the four answers in Minim's response shapes read back to the brute force")
    except MinimError as e:
        failures.append(f"minim client: {e}")
    finally:
        srv.shutdown()
    return failures


def cmd_self_check(args):
    work = tempfile.mkdtemp(prefix="minim-query-selfcheck.")
    path = os.path.join(work, "events.ndjson")
    if args.file:
        with open(args.file) as src, open(path, "w") as dst:
            dst.write(src.read())
    else:
        import subprocess

        minim = args.minim or os.path.join(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/minim-target"),
                                           "release", "minim")
        with open(path, "w") as dst:
            subprocess.run([minim, "gen", "--events", str(args.events), "--seed", "1"], stdout=dst, check=True)
    with open(path, "a") as dst:
        for e in edge_cases():
            dst.write(json.dumps(e) + "\n")
    evs = read_events(path)
    log(f"self-check on {len(evs)} events ({path})")

    q3, disagree = brute_q3(evs)
    brute = {"Q1": brute_q1(evs), "Q2": brute_q2(evs), "Q3": q3, "Q4": brute_q4(evs)}
    failures = []
    if disagree:
        failures.append(f"brute force: exhaustive chain search and the windowFunnel scan disagree on {disagree} users")
    edge = {u: lvl for u, lvl in [("edge-tie", 3), ("edge-window", 2), ("edge-late", 3), ("edge-after", 0),
                                  ("edge-before", 0), ("edge-restart", 2), ("edge-order", 2),
                                  ("edge-order2", 1), ("edge-two", 3)]}
    for u, want in edge.items():
        times = [[t for e, uu, t, _ in evs if uu == u and e == s] for s in FUNNEL_STEPS]
        got = funnel_level_exhaustive(times)
        if got != want:
            failures.append(f"brute force: funnel level of {u} is {got}, expected {want}")
    retro = brute_q4([x for x in evs if x[1] == "edge-ret"])
    if retro != {("2026-01-03", "size"): 1, ("2026-01-03", 0): 1, ("2026-01-03", 6): 1}:
        failures.append(f"brute force: retention of edge-ret is {retro}")
    retro = brute_q4([x for x in evs if x[1] == "edge-ret2"])
    if retro != {(TO, "size"): 1, (TO, 0): 1, (TO, 1): 1, (TO, 6): 1}:
        failures.append(f"brute force: retention of edge-ret2 is {retro}")

    failures += check_minim_client(brute)
    for name in args.engines:
        ns = argparse.Namespace(engine=name, path=os.path.join(work, f"{name}.db"))
        try:
            eng = open_engine(ns, read_only=False)
        except ImportError as e:
            failures.append(f"{name}: cannot import ({e})")
            continue
        eng.load([path])
        for q in QUESTIONS:
            got = eng.canon(q, eng.fetch(q))
            want = brute[q]
            if got != want:
                keys = sorted(set(got) | set(want), key=sort_key)
                diff = [k for k in keys if got.get(k, 0) != want.get(k, 0)]
                failures.append(f"{name} {q}: {len(diff)} of {len(keys)} cells differ from the brute force, first: "
                                + "; ".join(f"{fmt_key(k)} {name} {got.get(k, 0)} brute {want.get(k, 0)}"
                                            for k in diff[:5]))
            else:
                log(f"{name} {q}: {len(got)} cells, identical to the brute force")
        eng.close()
    log(f"brute force: Q3 steps {[v for _, v in sorted(q3.items(), key=lambda kv: kv[0][1])]}, "
        f"Q4 {sum(1 for k in brute['Q4'] if k[1] == 'size')} cohorts")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work}")
    if failures:
        for f in failures:
            log(f"FAIL {f}")
        sys.exit(1)
    log("self-check passed")


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--self-check":
        argv[0] = "self-check"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load")
    p.add_argument("--engine", required=True, choices=["duckdb", "chdb"])
    p.add_argument("--path", required=True)
    p.add_argument("--file", required=True, action="append")
    p.add_argument("--append", action="store_true", help="add to load time of an existing --out")
    p.add_argument("--no-finish", action="store_true", help="skip CHECKPOINT / OPTIMIZE (more chunks follow)")
    p.add_argument("--out")
    p = sub.add_parser("run")
    p.add_argument("--engine", required=True, choices=["minim", "duckdb", "chdb"])
    p.add_argument("--path")
    p.add_argument("--url")
    p.add_argument("--project")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--questions", nargs="+", default=QUESTIONS, choices=QUESTIONS)
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--work", required=True)
    p.add_argument("--meta")
    p = sub.add_parser("self-check")
    p.add_argument("--file", help="NDJSON to check on (default: `minim gen --events N --seed 1`)")
    p.add_argument("--minim", help="minim binary for `gen`")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--engines", nargs="+", default=["duckdb", "chdb"], choices=["duckdb", "chdb"])
    p.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    {"load": cmd_load, "run": cmd_run, "report": cmd_report, "self-check": cmd_self_check}[args.cmd](args)


if __name__ == "__main__":
    main()
