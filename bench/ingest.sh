#!/usr/bin/env bash
# bench/ingest.sh: ingest throughput and latency, Minim vs ClickHouse, on this machine.
#
# One run: builds `minim` (release), starts a private ClickHouse server (installed with
# apt-get if absent) and a private `minim serve`, generates BENCH_EVENTS events with
# `minim gen`, and replays them at each server with `minim load`: first as fast as the
# server answers (peak), then paced at half of that server's own peak (latency at a
# sustainable load). Prints a markdown table for BENCHMARKS.md; never asserts timings.
#
# Usage: bench/ingest.sh            (from anywhere; needs root only to install ClickHouse)
# Environment (all optional):
#   BENCH_EVENTS=2000000      events to generate and send per run
#   BENCH_CONCURRENCY=8       requests in flight
#   BENCH_BATCH_SIZE=1000     events per request
#   BENCH_GZIP=0              1: gzip request bodies (both targets)
#   BENCH_TARGETS="clickhouse minim"   which systems to measure, in this order
#   BENCH_CH_PORT=18123       ClickHouse HTTP port (its native port is this + 1)
#   BENCH_MINIM_PORT=18080    minim listen port
#   BENCH_SETTLE_S=10         pause between the peak and the half-load run (background work)
#   BENCH_EVENTS_FILE=        use this NDJSON instead of running `minim gen`
#   BENCH_DIR=                work directory (default: a fresh temp dir, removed on exit)
#   BENCH_KEEP=0              1: keep the work directory (logs, data, JSON results)
#   BENCH_APPEND=             also append the markdown to this file (e.g. BENCHMARKS.md)
#   BENCH_BUILD=1             0: skip `cargo build` (use the binary already built)
#   BENCH_LOAD_BIN=           binary providing the `load` subcommand (default: the built minim)
#   CARGO_TARGET_DIR          honoured when locating the built binary
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVENTS=${BENCH_EVENTS:-2000000}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
BATCH=${BENCH_BATCH_SIZE:-1000}
GZIP=${BENCH_GZIP:-0}
TARGETS=${BENCH_TARGETS:-"clickhouse minim"}
CH_PORT=${BENCH_CH_PORT:-18123}
CH_TCP_PORT=$((CH_PORT + 1))
MINIM_PORT=${BENCH_MINIM_PORT:-18080}
SETTLE_S=${BENCH_SETTLE_S:-10}
KEEP=${BENCH_KEEP:-0}
APPEND_TO=${BENCH_APPEND:-}
if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
    KEEP=1 # never delete a directory we were given
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/minim-bench.XXXXXX")
fi
MINIM=${CARGO_TARGET_DIR:-$ROOT/target}/release/minim
LOAD_BIN=${BENCH_LOAD_BIN:-$MINIM}

STOP_TIMEOUT_S=10
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
mib() { awk -v kb="${1:-0}" 'BEGIN { printf "%.0f", kb / 1024 }'; }

# One field of the flat JSON `minim load --json` prints (numbers, strings, null).
jf() { grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2- | tr -d '"'; }
fmt0() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "–"; else printf "%.0f", x }'; }
fmt1() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "–"; else printf "%.1f", x }'; }

# ---------------------------------------------------------------------------------------
# Build, generate

command -v curl >/dev/null || die "curl is needed"
log "work directory $WORK"
LOADAVG_START=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOADAVG_START" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average is $LOADAVG_START; other work on this machine will skew the numbers"
fi
if [[ ${BENCH_BUILD:-1} != 0 ]]; then
    log "building minim (release)"
    (cd "$ROOT" && cargo build --release -p minim) || die "cargo build failed"
fi
need_minim() { [[ -x $MINIM ]] || die "no minim binary at $MINIM (build failed or BENCH_BUILD=0)"; }
[[ -x $LOAD_BIN ]] || die "no binary at $LOAD_BIN"

EVENTS_FILE=${BENCH_EVENTS_FILE:-$WORK/events.ndjson}
if [[ -z ${BENCH_EVENTS_FILE:-} ]]; then
    need_minim
    log "generating $EVENTS events"
    "$MINIM" gen --events "$EVENTS" --seed 1 >"$EVENTS_FILE" || die "minim gen failed"
fi
[[ -s $EVENTS_FILE ]] || die "no events in $EVENTS_FILE"
log "events: $(wc -l <"$EVENTS_FILE") lines, $(($(stat -c %s "$EVENTS_FILE") / 1048576)) MiB"

LOAD_FLAGS=(--file "$EVENTS_FILE" --max-events "$EVENTS" --concurrency "$CONCURRENCY" --batch-size "$BATCH" --json)
[[ $GZIP == 1 ]] && LOAD_FLAGS+=(--gzip)

# run_load NAME KEY ARGS...: one `minim load`; its JSON lands in $WORK/NAME.json. The
# ingest KEY (may be empty) goes through the environment, never onto a command line.
run_load() {
    local name=$1 key=$2
    shift 2
    log "load run $name: $*"
    # In the background plus `wait`, so a signal to this script is handled at once.
    local rc=0
    MINIM_INGEST_KEY=$key run_child "$LOAD_BIN" load "${LOAD_FLAGS[@]}" "$@" \
        >"$WORK/$name.json" 2> >(sed "s/^/    /" >&2) || rc=$?
    ((rc == 0)) || log "load run $name failed (exit $rc; see above)"
    [[ -s $WORK/$name.json ]] || echo '{}' >"$WORK/$name.json"
}

# peak_and_half TARGET URL: the peak run, settle, then a run at half of the peak rate.
# Per-run settings come from PEAK_ARGS/HALF_ARGS and PEAK_KEY/HALF_KEY.
peak_and_half() {
    local target=$1 url=$2
    run_load "$target-peak" "$PEAK_KEY" --target "$target" --url "$url" "${PEAK_ARGS[@]}"
    local peak
    peak=$(jf "$WORK/$target-peak.json" events_per_s)
    settle "$target"
    if [[ -n $peak && $peak != null && $peak != 0* ]]; then
        local half
        half=$(awk -v p="$peak" 'BEGIN { printf "%.0f", p / 2 }')
        run_load "$target-half" "$HALF_KEY" --target "$target" --url "$url" --rate "$half" "${HALF_ARGS[@]}"
    else
        log "no peak rate for $target; skipping the half-load run"
        echo '{}' >"$WORK/$target-half.json"
    fi
}

settle() {
    if [[ $1 == clickhouse ]]; then
        # Wait for background merges of the peak run's parts (bounded), then the pause.
        local i
        for ((i = 0; i < 120; i++)); do
            [[ $(ch_query "SELECT count() FROM system.merges") == 0 ]] && break
            sleep 1
        done
    fi
    sleep "$SETTLE_S"
}

# ---------------------------------------------------------------------------------------
# ClickHouse

ch_query() { curl -sS --fail-with-body --data-binary "$1" "http://127.0.0.1:$CH_PORT/"; }

CH_TABLE_DDL='(event String, distinct_id String, timestamp DateTime, insert_id String, properties String)
ENGINE = MergeTree() PARTITION BY toYYYYMM(timestamp) ORDER BY (distinct_id, timestamp)'

bench_clickhouse() {
    if ! command -v clickhouse-server >/dev/null; then
        log "installing clickhouse-server with apt-get"
        [[ $(id -u) == 0 ]] || die "clickhouse-server is missing and installing it needs root"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server >/dev/null
    fi
    port_in_use "$CH_PORT" && die "port $CH_PORT is in use (set BENCH_CH_PORT)"
    port_in_use "$CH_TCP_PORT" && die "port $CH_TCP_PORT is in use (set BENCH_CH_PORT)"

    local dir=$WORK/clickhouse
    mkdir -p "$dir/data" "$dir/log"
    # Minimal private config: loopback only, own data/log dirs, UTC, no system logs.
    cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <http_port>$CH_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>4096</max_connections>
    <keep_alive_timeout>30</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>536870912</uncompressed_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/data/tmp/</tmp_path>
    <user_files_path>$dir/data/user_files/</user_files_path>
    <format_schema_path>$dir/data/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
    cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
EOF
    log "starting clickhouse-server on 127.0.0.1:$CH_PORT"
    clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if ! wait_http "http://127.0.0.1:$CH_PORT/ping" "$pid"; then
        tail -n 20 "$dir/log/stdout.log" "$dir/log/server.err.log" >&2 2>/dev/null || true
        die "clickhouse-server did not come up"
    fi
    CH_VERSION=$(ch_query "SELECT version()")
    ch_query "CREATE TABLE events $CH_TABLE_DDL" >/dev/null
    ch_query "CREATE TABLE events_half $CH_TABLE_DDL" >/dev/null

    PEAK_ARGS=(--table events) PEAK_KEY=
    HALF_ARGS=(--table events_half) HALF_KEY=
    peak_and_half clickhouse "http://127.0.0.1:$CH_PORT"

    CH_ROWS=$(ch_query "SELECT count() FROM events")
    CH_PARTS=$(ch_query "SELECT count() FROM system.parts WHERE active AND table = 'events'")
    CH_DISK_KB=$(ch_query "SELECT intDiv(sum(bytes_on_disk), 1024) FROM system.parts WHERE active AND table IN ('events', 'events_half')")
    RSS_clickhouse=$(mem_kb "$pid" VmHWM)
    RSS_NOW_clickhouse=$(mem_kb "$pid" VmRSS)
    DISK_clickhouse=$CH_DISK_KB
    log "clickhouse: $CH_ROWS rows in 'events', $CH_PARTS active parts, peak RSS $(mib "$RSS_clickhouse") MiB"
    stop_pid "$pid"
}

# ---------------------------------------------------------------------------------------
# Minim

bench_minim() {
    need_minim
    port_in_use "$MINIM_PORT" && die "port $MINIM_PORT is in use (set BENCH_MINIM_PORT)"
    local data=$WORK/minim-data out key_peak key_half
    # One project per run, so the half-load run stores fresh events instead of hitting
    # insert_id deduplication of the peak run's copies (ClickHouse gets a fresh table).
    out=$("$MINIM" --data-dir "$data" project create --name bench-peak --json) || die "project create failed"
    key_peak=$(printf '%s' "$out" | grep -o '"ingest_key" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    out=$("$MINIM" --data-dir "$data" project create --name bench-half --json) || die "project create failed"
    key_half=$(printf '%s' "$out" | grep -o '"ingest_key" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    [[ -n $key_peak && -n $key_half ]] || die "no ingest_key in: $out"

    log "starting minim serve on 127.0.0.1:$MINIM_PORT"
    "$MINIM" --data-dir "$data" serve --listen "127.0.0.1:$MINIM_PORT" >"$WORK/minim.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if ! wait_http "http://127.0.0.1:$MINIM_PORT/readyz" "$pid"; then
        tail -n 20 "$WORK/minim.log" >&2 || true
        die "minim serve did not become ready"
    fi
    MINIM_VERSION=$("$MINIM" --version 2>/dev/null || echo minim)

    PEAK_ARGS=() PEAK_KEY=$key_peak
    HALF_ARGS=() HALF_KEY=$key_half
    peak_and_half minim "http://127.0.0.1:$MINIM_PORT"

    RSS_minim=$(mem_kb "$pid" VmHWM)
    RSS_NOW_minim=$(mem_kb "$pid" VmRSS)
    local t0=$SECONDS
    stop_pid "$pid" 120
    MINIM_STOP_S=$((SECONDS - t0))
    DISK_minim=$({ du -sk "$data" 2>/dev/null || echo 0; } | cut -f1)
    log "minim: peak RSS $(mib "$RSS_minim") MiB, stopped in ${MINIM_STOP_S}s"
}

# ---------------------------------------------------------------------------------------
# Run and report

CH_VERSION=- MINIM_VERSION=- MINIM_STOP_S=-
for t in $TARGETS; do
    case $t in
        clickhouse) bench_clickhouse ;;
        minim) bench_minim ;;
        *) die "unknown target $t in BENCH_TARGETS" ;;
    esac
done

row() { # target label
    local t=$1 label=$2 p=$WORK/$1-peak.json h=$WORK/$1-half.json rss=RSS_$1 disk=DISK_$1
    local errs
    errs=$(awk -v a="$(jf "$p" errors)" -v b="$(jf "$h" errors)" -v c="$(jf "$p" retries)" -v d="$(jf "$h" retries)" \
        'BEGIN { printf "%d / %d", a + b, c + d }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(fmt0 "$(jf "$p" events_per_s)")" "$(fmt1 "$(jf "$p" p50)")" "$(fmt1 "$(jf "$p" p99)")" \
        "$(fmt0 "$(jf "$h" events_per_s)")" "$(fmt1 "$(jf "$h" p50)")" "$(fmt1 "$(jf "$h" p99)")" \
        "$(mib "${!rss:-}")" "$(mib "${!disk:-}")" "$errs"
}

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "unknown")
REPORT=$WORK/report.md
{
    echo "### Ingest: $(date -u +%Y-%m-%d), $EVENTS events, batch $BATCH, concurrency $CONCURRENCY$([[ $GZIP == 1 ]] && echo ", gzip")"
    echo
    echo "Machine: $(nproc) cores ($CPU), ${MEM_GIB} GiB; load generator and server on one host over loopback;"
    echo "1-minute load average before the run: $LOADAVG_START."
    echo "Versions: $MINIM_VERSION (rev $REV), ClickHouse $CH_VERSION. Data: \`minim gen --events $EVENTS --seed 1\`."
    echo
    echo "| system | peak events/s | p50 ms | p99 ms | half-load events/s | p50 ms | p99 ms | peak RSS MiB | disk MiB | failed batches / retries |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $TARGETS; do
        case $t in
            clickhouse) row clickhouse "ClickHouse $CH_VERSION (MergeTree, HTTP JSONEachRow)" ;;
            minim) row minim "Minim (native NDJSON)" ;;
        esac
    done
    echo
    echo "- Peak: unpaced, $CONCURRENCY requests in flight. Half load: paced (\`--rate\`) at half of that system's own peak."
    echo "  Latency is per request of $BATCH events, send to last response byte, successful requests only."
    echo "- Peak RSS is the server's VmHWM (kernel high-water mark) after both runs. Disk holds both runs'"
    echo "  events (2 × $EVENTS): active parts of both tables for ClickHouse, the whole data dir for Minim."
    echo "- Durability differs: Minim acknowledges a batch only after it is fsynced to its WAL."
    echo "  ClickHouse 18.16 acknowledges an INSERT once the new part is written to the page cache; it"
    echo "  never fsyncs parts on insert (18.16 has no setting for it), so a power loss can lose"
    echo "  acknowledged rows. Each synchronous INSERT creates a new part per partition touched"
    echo "  (${CH_PARTS:-?} active parts after the peak run) that background merges combine; 18.16 has no async inserts."
    echo "- ClickHouse receives the same lines with \`properties\` re-serialized as a JSON string and"
    echo "  \`timestamp\` as \`YYYY-MM-DD hh:mm:ss\` (18.16 has no DateTime64 and cannot read an object"
    echo "  into a String column); the rewrite happens before timing in \`minim load\`."
} >"$REPORT"

echo
cat "$REPORT"
if [[ -n $APPEND_TO ]]; then
    { echo; cat "$REPORT"; } >>"$APPEND_TO"
    log "appended the report to $APPEND_TO"
fi
