#!/usr/bin/env bash
# bench/query.sh: query latency, Minim vs DuckDB vs chDB (embedded ClickHouse), on this machine.
#
# One run: generates BENCH_EVENTS events with `minim gen`, loads them into a private
# `minim serve` (then restarts it, so queries read flushed segments), into a DuckDB
# database file and into a chDB MergeTree table, asks each the same four questions
# (daily trend by country, daily unique users, a 3-step 7-day funnel, 7-day daily
# retention) once plus BENCH_RUNS more times, checks that every engine gave the same
# answers cell by cell, and prints a markdown table for BENCHMARKS.md. It never asserts
# timings; it fails (exit 3) when the engines disagree. The SQL, the Minim request
# bodies and the comparison are in bench/query.py; bench/README.md explains the choices.
#
# Usage: bench/query.sh                 (from anywhere)
#        bench/query.sh --self-check    check DuckDB's and chDB's SQL against a plain-Python
#                                       brute force at 20k events plus edge cases, and exit
# Environment (all optional):
#   BENCH_EVENTS=10000000     events to generate (ignored with BENCH_EVENTS_FILE)
#   BENCH_RUNS=5              warm runs per question, after one first (cold-ish) run
#   BENCH_ENGINES="minim duckdb chdb"   which engines, in this order (each loads, then is queried)
#   BENCH_SEED=1              `minim gen --seed`
#   BENCH_MINIM_PORT=18090    minim listen port
#   BENCH_RESTART=1           0: query Minim right after loading, without the SIGTERM + restart
#   BENCH_SETTLE_S=5          pause after Minim is (re)started, before its first query; then
#                             also until its background work (compaction of the freshly
#                             flushed segments: the peers get CHECKPOINT / OPTIMIZE FINAL)
#                             has stopped: under 5% of a core for 3 s in a row (at most 300 s)
#   BENCH_LOAD_CHUNK=2000000  events per `minim load` call (it builds all bodies in memory)
#   BENCH_LOAD_CONCURRENCY=8  `minim load --concurrency`
#   BENCH_STREAM_CHUNK=0      >0: never write the whole NDJSON; cut the one `minim gen` stream
#                             into chunks of this many lines as it is generated, load each
#                             chunk into every engine, delete it before the next is cut. For
#                             sizes the disk cannot hold as NDJSON (100M events = ~41 GB);
#                             pair with BENCH_ENGINES=minim.
#   BENCH_EVENTS_FILE=        use this NDJSON instead of running `minim gen` (all its lines)
#   BENCH_DIR=                work directory (default: a fresh temp dir, removed on exit)
#   BENCH_KEEP=0              1: keep the work directory (logs, data, JSON results)
#   BENCH_APPEND=             also append the markdown to this file (e.g. BENCHMARKS.md)
#   BENCH_ALLOW_MISMATCH=0    1: report engine disagreements but exit 0 (and still append)
#   BENCH_BUILD=0             1: `cargo build --release -p minim` first
#   BENCH_PYTHON=             Python with `duckdb` and `chdb` (default: the venv below)
#   BENCH_VENV=/root/.cache/minim-bench-venv   created, and filled with `pip install duckdb
#                             chdb`, when the modules the chosen engines need are missing
#   CARGO_TARGET_DIR          the binary is ${CARGO_TARGET_DIR:-/root/.cache/minim-target}/release/minim
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUERY_PY=$ROOT/bench/query.py
EVENTS=${BENCH_EVENTS:-10000000}
RUNS=${BENCH_RUNS:-5}
ENGINES=${BENCH_ENGINES:-"minim duckdb chdb"}
SEED=${BENCH_SEED:-1}
MINIM_PORT=${BENCH_MINIM_PORT:-18090}
RESTART=${BENCH_RESTART:-1}
SETTLE_S=${BENCH_SETTLE_S:-5}
LOAD_CHUNK=${BENCH_LOAD_CHUNK:-2000000}
LOAD_CONCURRENCY=${BENCH_LOAD_CONCURRENCY:-8}
STREAM_CHUNK=${BENCH_STREAM_CHUNK:-0}
KEEP=${BENCH_KEEP:-0}
APPEND_TO=${BENCH_APPEND:-}
VENV=${BENCH_VENV:-/root/.cache/minim-bench-venv}
MINIM=${CARGO_TARGET_DIR:-/root/.cache/minim-target}/release/minim
SELF_CHECK=0
case ${1:-} in
    --self-check) SELF_CHECK=1 ;;
    "") ;;
    *) echo "usage: $0 [--self-check]   (settings come from BENCH_* variables; see the header)" >&2; exit 2 ;;
esac

STOP_TIMEOUT_S=60
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for e in $ENGINES; do
    case $e in minim | duckdb | chdb) ;; *) die "unknown engine '$e' in BENCH_ENGINES (minim, duckdb, chdb)" ;; esac
done
[[ $RUNS =~ ^[0-9]+$ ]] || die "BENCH_RUNS must be a number"
[[ $STREAM_CHUNK =~ ^[0-9]+$ ]] || die "BENCH_STREAM_CHUNK must be a number"
[[ $LOAD_CHUNK =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOAD_CHUNK must be a positive number"
has_engine() { [[ " $ENGINES " == *" $1 "* ]]; }

if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
    KEEP=1 # never delete a directory we were given
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/minim-qbench.XXXXXX")
fi
WORK=$(cd "$WORK" && pwd)

mib() { awk -v b="${1:-0}" 'BEGIN { printf "%.0f", b / 1048576 }'; }
# One string or number field of a flat JSON object.
jf() { grep -o "\"$2\" *: *[^,}]*" "$1" | head -n1 | cut -d: -f2- | tr -d '" '; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/meta.tsv"; }

# ---------------------------------------------------------------------------------------
# Python with the engines' modules

PY=${BENCH_PYTHON:-}
setup_python() {
    local mods=() m
    has_engine duckdb && mods+=(duckdb)
    has_engine chdb && mods+=(chdb)
    [[ $SELF_CHECK == 1 ]] && mods=(duckdb chdb)
    if [[ -z $PY ]]; then
        if [[ -x $VENV/bin/python ]]; then
            PY=$VENV/bin/python
        elif ((${#mods[@]} == 0)); then
            PY=python3 # Minim only: the standard library is enough
        else
            log "creating the Python venv $VENV"
            if python3 -m venv "$VENV" >/dev/null 2>&1 && [[ -x $VENV/bin/pip ]]; then
                PY=$VENV/bin/python
            else
                rm -rf "$VENV"
                log "no working venv module; using python3 with pip --break-system-packages"
                PY=python3
            fi
        fi
    fi
    command -v "$PY" >/dev/null || die "no Python at $PY"
    local missing=()
    for m in "${mods[@]}"; do "$PY" -c "import $m" 2>/dev/null || missing+=("$m"); done
    if ((${#missing[@]})); then
        log "pip install ${missing[*]} (into $PY)"
        if [[ $PY == "$VENV/bin/python" ]]; then
            "$PY" -m pip install -q "${missing[@]}" || die "pip install ${missing[*]} failed"
        else
            "$PY" -m pip install -q --break-system-packages "${missing[@]}" || die "pip install ${missing[*]} failed"
        fi
    fi
}

if [[ $SELF_CHECK == 1 ]]; then
    [[ -x $MINIM ]] || die "no minim binary at $MINIM (needed for \`minim gen\`)"
    setup_python
    KEEP=0
    "$PY" "$QUERY_PY" self-check --minim "$MINIM" --events "${BENCH_EVENTS:-20000}"
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Build, check, generate

command -v curl >/dev/null || die "curl is needed"
log "work directory $WORK"
: >"$WORK/meta.tsv"
LOADAVG_START=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOADAVG_START" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average is $LOADAVG_START; other work on this machine will skew the numbers"
fi
if [[ ${BENCH_BUILD:-0} == 1 ]]; then
    log "building minim (release)"
    (cd "$ROOT" && cargo build --release -p minim) || die "cargo build failed"
fi
need_minim() { [[ -x $MINIM ]] || die "no minim binary at $MINIM (set CARGO_TARGET_DIR or BENCH_BUILD=1)"; }
if has_engine minim || [[ -z ${BENCH_EVENTS_FILE:-} ]]; then need_minim; fi
setup_python

avail_bytes() { df -PB1 "$WORK" | awk 'NR == 2 { print $4 }'; }
EVENTS_FILE=${BENCH_EVENTS_FILE:-$WORK/events.ndjson}
if [[ -n ${BENCH_EVENTS_FILE:-} ]]; then
    [[ $STREAM_CHUNK == 0 ]] || die "BENCH_STREAM_CHUNK and BENCH_EVENTS_FILE exclude each other"
    [[ -s $EVENTS_FILE ]] || die "no events in $EVENTS_FILE"
    EVENTS_FILE=$(cd "$(dirname "$EVENTS_FILE")" && pwd)/$(basename "$EVENTS_FILE")
    EVENTS=$(wc -l <"$EVENTS_FILE")
    DATA_DESC="\`$(basename "$EVENTS_FILE")\` ($EVENTS lines, $(mib "$(stat -c %s "$EVENTS_FILE")") MiB NDJSON)"
elif [[ $STREAM_CHUNK == 0 ]]; then
    need=$((EVENTS * 420))
    if ((need > $(avail_bytes) * 9 / 10)); then
        die "$EVENTS events need ~$(mib $need) MiB of NDJSON but $(mib "$(avail_bytes)") MiB are free; set BENCH_STREAM_CHUNK (e.g. 5000000) to generate and load in chunks"
    fi
    log "generating $EVENTS events"
    run_child "$MINIM" gen --events "$EVENTS" --seed "$SEED" >"$EVENTS_FILE" || die "minim gen failed"
    DATA_DESC="\`minim gen --events $EVENTS --seed $SEED\` ($(mib "$(stat -c %s "$EVENTS_FILE")") MiB NDJSON)"
fi
if [[ $STREAM_CHUNK == 0 ]]; then
    log "events: $EVENTS lines, $(mib "$(stat -c %s "$EVENTS_FILE")") MiB"
else
    NCHUNKS=$(((EVENTS + STREAM_CHUNK - 1) / STREAM_CHUNK))
    DATA_DESC="\`minim gen --events $EVENTS --seed $SEED\`, streamed: cut into $NCHUNKS chunks of $STREAM_CHUNK lines as it was generated (the last holds the remainder), each loaded into every engine and deleted before the next was cut; the whole NDJSON never existed on disk"
fi
meta engines "$ENGINES"
meta events "$EVENTS"
meta data "$DATA_DESC"
meta loadavg "$LOADAVG_START"

# ---------------------------------------------------------------------------------------
# Minim

MINIM_DATA=$WORK/minim-data
MINIM_URL=http://127.0.0.1:$MINIM_PORT
MINIM_PID=
MINIM_LOAD_S=0
MINIM_LOADED=0
MINIM_REJECTED=0

minim_setup() {
    need_minim
    port_in_use "$MINIM_PORT" && die "port $MINIM_PORT is in use (set BENCH_MINIM_PORT)"
    local out
    # Both work offline against the data dir, before the server starts.
    out=$("$MINIM" --data-dir "$MINIM_DATA" project create --name bench --json 2>>"$WORK/minim-admin.log") ||
        die "project create failed: $(tail -n 3 "$WORK/minim-admin.log")"
    PROJECT=$(printf '%s' "$out" | grep -o '"project_id" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    KEY=$(printf '%s' "$out" | grep -o '"ingest_key" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    [[ -n $PROJECT && -n $KEY ]] || die "no project_id/ingest_key in: $out"
    out=$("$MINIM" --data-dir "$MINIM_DATA" token create --project "$PROJECT" --role analyst --json \
        2>>"$WORK/minim-admin.log") || die "token create failed: $(tail -n 3 "$WORK/minim-admin.log")"
    TOKEN=$(printf '%s' "$out" | grep -o '"token" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    [[ -n $TOKEN ]] || die "no token in the output of token create"
    MINIM_VERSION=$("$MINIM" --version 2>/dev/null || echo minim)
}

minim_start() {
    log "starting minim serve on 127.0.0.1:$MINIM_PORT"
    "$MINIM" --data-dir "$MINIM_DATA" serve --listen "127.0.0.1:$MINIM_PORT" >>"$WORK/minim.log" 2>&1 &
    MINIM_PID=$!
    PIDS+=("$MINIM_PID")
    if ! wait_http "$MINIM_URL/readyz" "$MINIM_PID" 300; then
        tail -n 20 "$WORK/minim.log" >&2 || true
        die "minim serve did not become ready"
    fi
}

minim_stop() { # -> MINIM_STOP_S
    local t0=$SECONDS
    stop_pid "$MINIM_PID" 600
    MINIM_STOP_S=$((SECONDS - t0))
    local keep=()
    for pid in "${PIDS[@]}"; do [[ $pid == "$MINIM_PID" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
    MINIM_PID=
}

# minim_load_file FILE LINES: `minim load` in chunks of LOAD_CHUNK lines (it builds every
# request body in memory before sending). The ingest key goes through the environment.
minim_load_file() {
    local file=$1 lines=$2 off=1 end n=0 out
    while ((off <= lines)); do
        end=$((off + LOAD_CHUNK - 1))
        out=$WORK/minim-load-$(printf %04d "$MINIM_LOAD_N").json
        MINIM_LOAD_N=$((MINIM_LOAD_N + 1))
        MINIM_INGEST_KEY=$KEY run_child "$MINIM" load --file - --url "$MINIM_URL" --max-events "$LOAD_CHUNK" \
            --concurrency "$LOAD_CONCURRENCY" --quiet --json \
            < <(sed -n "${off},${end}p;${end}q" "$file") >"$out" 2>>"$WORK/minim-load.log" || {
            tail -n 15 "$WORK/minim-load.log" >&2
            die "minim load failed (lines $off..$end of $(basename "$file"))"
        }
        local ok rej errs el
        ok=$(jf "$out" events_ok) rej=$(jf "$out" events_rejected) errs=$(jf "$out" errors) el=$(jf "$out" elapsed_s)
        MINIM_LOADED=$((MINIM_LOADED + ${ok:-0}))
        MINIM_REJECTED=$((MINIM_REJECTED + ${rej:-0} + ${errs:-0}))
        MINIM_LOAD_S=$(awk -v a="$MINIM_LOAD_S" -v b="${el:-0}" 'BEGIN { print a + b }')
        n=$((n + ${ok:-0}))
        off=$((end + 1))
    done
    log "minim: loaded $n events from $(basename "$file") (total $MINIM_LOADED)"
}
MINIM_LOAD_N=0

minim_after_load() {
    ((MINIM_REJECTED == 0)) || die "minim rejected $MINIM_REJECTED events or batches (keep the minim-load-*.json with BENCH_KEEP=1); its answers would not match"
    ((MINIM_LOADED == EVENTS)) || die "minim accepted $MINIM_LOADED of $EVENTS events"
    meta minim_load_s "$(awk -v s="$MINIM_LOAD_S" 'BEGIN { printf "%.1f", s }')"
    if [[ $RESTART == 1 ]]; then
        log "restarting minim (SIGTERM flushes the memtable to segments)"
        minim_stop
        log "minim: stopped in ${MINIM_STOP_S}s"
        minim_start
        meta minim_restarted 1
        meta minim_storage "segments on disk (SIGTERM flush + restart after loading, ${MINIM_STOP_S}s to stop)"
    else
        meta minim_restarted 0
        meta minim_storage "as left by ingest (memtable + whatever was flushed), no restart"
    fi
    sleep "$SETTLE_S"
    minim_wait_idle
}

# Waits until the server's CPU time grows by under 5 ticks (of 100 per second) a second,
# 12 seconds in a row, so that no compaction runs while it is timed: longer than the
# compactor's 10 s tick (3 quiet seconds could fall before its first tick; the 100M run
# of the seventh session was queried at 655 segments that then merged to 90).
minim_wait_idle() {
    local last now quiet=0 waited=0
    last=$(cpu_ticks "$MINIM_PID")
    while ((quiet < 12 && waited < 600)); do
        sleep 1
        waited=$((waited + 1))
        now=$(cpu_ticks "$MINIM_PID")
        if ((now - last < 5)); then quiet=$((quiet + 1)); else quiet=0; fi
        last=$now
    done
    log "minim: idle after $((SETTLE_S + waited))s"
    meta minim_settle_s $((SETTLE_S + waited))
}
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

minim_query() {
    log "querying minim ($RUNS warm runs)"
    MINIM_BENCH_TOKEN=$TOKEN run_child "$PY" "$QUERY_PY" run --engine minim --url "$MINIM_URL" \
        --project "$PROJECT" --runs "$RUNS" --out "$WORK/run-minim.json" ||
        { log "last lines of the server log:"; tail -n 5 "$WORK/minim.log" | sed 's/^/    /' >&2; die "minim queries failed (see above)"; }
    local hwm rss disk
    hwm=$(mem_kb "$MINIM_PID" VmHWM) rss=$(mem_kb "$MINIM_PID" VmRSS)
    disk=$({ du -sb "$MINIM_DATA" 2>/dev/null || echo 0; } | cut -f1)
    meta minim_hwm_bytes $((hwm * 1024))
    meta minim_rss_bytes $((rss * 1024))
    meta minim_disk_bytes "$disk"
    log "minim: VmHWM $(mib $((hwm * 1024))) MiB, VmRSS $(mib $((rss * 1024))) MiB, data dir $(mib "$disk") MiB"
    minim_stop
}

# ---------------------------------------------------------------------------------------
# DuckDB and chDB (in-process, through query.py; each step is its own Python process)

peer_path() { [[ $1 == duckdb ]] && echo "$WORK/duckdb/events.duckdb" || echo "$WORK/chdb"; }
peer_load() { # engine file [--append] [--no-finish]
    local e=$1 file=$2
    shift 2
    mkdir -p "$WORK/duckdb"
    log "$e: loading $(basename "$file")"
    run_child "$PY" "$QUERY_PY" load --engine "$e" --path "$(peer_path "$e")" --file "$file" \
        --out "$WORK/load-$e.json" "$@" || die "$e load failed"
}
peer_query() {
    log "querying $1 ($RUNS warm runs)"
    run_child "$PY" "$QUERY_PY" run --engine "$1" --path "$(peer_path "$1")" --runs "$RUNS" \
        --out "$WORK/run-$1.json" || die "$1 queries failed"
}

# ---------------------------------------------------------------------------------------
# Run

has_engine minim && minim_setup
if [[ $STREAM_CHUNK == 0 ]]; then
    for e in $ENGINES; do
        if [[ $e == minim ]]; then
            minim_start
            minim_load_file "$EVENTS_FILE" "$EVENTS"
            minim_after_load
            minim_query
        else
            peer_load "$e" "$EVENTS_FILE"
            [[ $(jf "$WORK/load-$e.json" rows) == "$EVENTS" ]] || die "$e loaded $(jf "$WORK/load-$e.json" rows) rows, not $EVENTS"
            peer_query "$e"
        fi
    done
else
    log "streaming $EVENTS events in $NCHUNKS chunks of up to $STREAM_CHUNK"
    has_engine minim && minim_start
    # One generator for the whole data set (one user population, continuous journeys):
    # `split` cuts its output into chunk files, and its filter holds each chunk back until
    # the loop below has loaded and deleted the one before (so one chunk is on disk at a
    # time) and gives up when this script is gone.
    CHUNK_DIR=$WORK/chunks
    mkdir -p "$CHUNK_DIR"
    "$MINIM" gen --events "$EVENTS" --seed "$SEED" | BENCH_PID=$$ split -l "$STREAM_CHUNK" -d -a 5 --additional-suffix=.ndjson \
        --filter='cat >"$FILE.part" && mv "$FILE.part" "$FILE" && while [ -e "$FILE" ]; do kill -0 "$BENCH_PID" 2>/dev/null || exit 1; sleep 0.2; done' \
        - "$CHUNK_DIR/c" &
    GEN_PID=$!
    PIDS+=("$GEN_PID")
    for ((i = 0; i < NCHUNKS; i++)); do
        n=$STREAM_CHUNK
        ((i == NCHUNKS - 1)) && n=$((EVENTS - i * STREAM_CHUNK))
        chunk=$(printf '%s/c%05d.ndjson' "$CHUNK_DIR" "$i")
        while [[ ! -e $chunk ]]; do
            kill -0 "$GEN_PID" 2>/dev/null || die "minim gen | split stopped before chunk $((i + 1))"
            sleep 0.2
        done
        lines=$(wc -l <"$chunk")
        [[ $lines == "$n" ]] || die "chunk $((i + 1)) has $lines lines, not $n"
        log "chunk $((i + 1))/$NCHUNKS: $n events, $(mib "$(stat -c %s "$chunk")") MiB"
        for e in $ENGINES; do
            case $e in
                minim) minim_load_file "$chunk" "$n" ;;
                *)
                    flags=()
                    ((i > 0)) && flags+=(--append)
                    ((i < NCHUNKS - 1)) && flags+=(--no-finish)
                    peer_load "$e" "$chunk" "${flags[@]}"
                    ;;
            esac
        done
        rm -f "$chunk"
    done
    wait "$GEN_PID" || die "minim gen | split failed"
    # Minim first, so its server is stopped before the peers are queried.
    if has_engine minim; then
        minim_after_load
        minim_query
    fi
    for e in $ENGINES; do
        if [[ $e != minim ]]; then
            [[ $(jf "$WORK/load-$e.json" rows) == "$EVENTS" ]] || die "$e loaded $(jf "$WORK/load-$e.json" rows) rows, not $EVENTS"
            peer_query "$e"
        fi
    done
    meta note "Streamed data: see Data above; nothing else differs."
fi

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
meta machine "$(nproc) cores (${CPU:-unknown CPU}), $MEM_GIB GiB RAM, $(uname -sr)"
REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
has_engine minim && meta minim_version "$MINIM_VERSION (rev $REV)"

rc=0
"$PY" "$QUERY_PY" report --work "$WORK" --meta "$WORK/meta.tsv" || rc=$?
if ((rc == 0)) && [[ -n $APPEND_TO ]]; then
    { echo; cat "$WORK/report.md"; } >>"$APPEND_TO"
    log "appended the report to $APPEND_TO"
elif ((rc != 0)) && [[ -n $APPEND_TO ]]; then
    log "not appending to $APPEND_TO: the engines disagree"
fi
exit "$rc"
