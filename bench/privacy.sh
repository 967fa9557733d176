#!/usr/bin/env bash
# bench/privacy.sh: what the privacy pipeline costs, on this machine, in one run.
#
# 1. `minim gen --events $BENCH_EVENTS --seed 1` into a file.
# 2. Scrubbing throughput on one thread: `scrub_bench` (the PII detectors alone, over
#    every string of every event) and `pipeline_bench` (the whole pipeline: plan, names,
#    URLs, detectors, rewrite, pseudonyms, UA), both examples of minim-privacy.
# 3. Ingest events/s with the pipeline on and off: two fresh `minim serve` processes
#    (the second with MINIM_PRIVACY__BENCHMARK_BYPASS=true), the same events replayed by
#    `minim load` with the same batch size and concurrency. Reports; never asserts.
#
# Environment (all optional):
#   BENCH_EVENTS=1000000   events to generate and send per run
#   BENCH_CONCURRENCY=8    requests in flight
#   BENCH_BATCH_SIZE=1000  events per request
#   BENCH_MINIM_PORT=18090
#   BENCH_BUILD=1          0: use the binaries already built
#   BENCH_DIR= / BENCH_KEEP=0 / BENCH_APPEND=   as in ingest.sh
#   CARGO_TARGET_DIR       honoured when locating the built binaries
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVENTS=${BENCH_EVENTS:-1000000}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
BATCH=${BENCH_BATCH_SIZE:-1000}
PORT=${BENCH_MINIM_PORT:-18090}
KEEP=${BENCH_KEEP:-0}
APPEND_TO=${BENCH_APPEND:-}
if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
    KEEP=1
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/minim-bench.XXXXXX")
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MINIM=$TARGET/release/minim
STOP_TIMEOUT_S=60
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
jf() { grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2- | tr -d '"'; }

if [[ ${BENCH_BUILD:-1} == 1 ]]; then
    log "building minim and the privacy examples (release)"
    (cd "$ROOT" && cargo build --release -q -p minim &&
        cargo build --release -q -p minim-privacy --example scrub_bench --example pipeline_bench)
fi
EVENTS_FILE=$WORK/events.ndjson
log "generating $EVENTS events"
"$MINIM" gen --events "$EVENTS" --seed 1 >"$EVENTS_FILE"
MB=$(du -m "$EVENTS_FILE" | cut -f1)

log "scrub_bench (detectors only, one thread)"
SCRUB=$("$TARGET/release/examples/scrub_bench" "$EVENTS_FILE" 5 2>/dev/null | tail -n 20)
log "pipeline_bench (whole pipeline, one thread)"
PIPE=$("$TARGET/release/examples/pipeline_bench" "$EVENTS_FILE" 5 2>/dev/null | head -n 1)

# ingest NAME BYPASS: one server, one project, one peak `minim load` run.
ingest() {
    local name=$1 bypass=$2 data=$WORK/data-$1 out key pid
    out=$("$MINIM" --data-dir "$data" project create --name "$name" --json)
    key=$(printf '%s' "$out" | grep -o '"ingest_key" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    log "minim serve ($name)"
    MINIM_PRIVACY__BENCHMARK_BYPASS=$bypass "$MINIM" --data-dir "$data" serve \
        --listen "127.0.0.1:$PORT" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$PORT/readyz" "$pid" || die "minim serve ($name) did not start"
    MINIM_INGEST_KEY=$key run_child "$MINIM" load --file "$EVENTS_FILE" --max-events "$EVENTS" \
        --concurrency "$CONCURRENCY" --batch-size "$BATCH" --url "http://127.0.0.1:$PORT" \
        --json >"$WORK/$name.json"
    stop_pid "$pid" 120
}
ingest pipeline-on false
ingest pipeline-off true
ON=$(jf "$WORK/pipeline-on.json" events_per_s)
OFF=$(jf "$WORK/pipeline-off.json" events_per_s)
COST=$(awk -v on="$ON" -v off="$OFF" 'BEGIN { if (off > 0) printf "%.1f", (1 - on / off) * 100 }')

REPORT=$(
    echo "### $(date -u +%Y-%m-%d), $EVENTS events ($MB MB NDJSON), rev $(cd "$ROOT" && git rev-parse --short HEAD)"
    echo
    echo "Command: \`BENCH_EVENTS=$EVENTS bench/privacy.sh\`; machine: $(nproc) cores."
    echo
    echo "- Detectors alone (\`scrub_bench\`, one thread):"
    echo '```'
    echo "$SCRUB"
    echo '```'
    echo "- Whole pipeline (\`pipeline_bench\`, one thread): $PIPE"
    echo
    echo "| ingest (\`minim load\`, batch $BATCH, concurrency $CONCURRENCY) | events/s |"
    echo "|---|---|"
    echo "| pipeline on | $ON |"
    echo "| pipeline off (\`privacy.benchmark_bypass\`) | $OFF |"
    echo "| cost of the pipeline | ${COST}% |"
)
echo "$REPORT"
[[ -n $APPEND_TO ]] && printf '\n%s\n' "$REPORT" >>"$APPEND_TO"
exit 0
