# bench/lib.sh: shared by the bench scripts (sourced, not run). Logging, and process
# bookkeeping: everything a script starts is stopped on exit, by its own pid, and the
# work directory WORK (once set) is removed unless KEEP=1. The sourcing script may set STOP_TIMEOUT_S (how long a server gets to stop after SIGTERM).

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

PIDS=()
CHILD_PID=
stop_pid() { # pid [timeout_s]
    local pid=$1 timeout=${2:-30} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $CHILD_PID ]] && stop_pid "$CHILD_PID" 5
    for pid in "${PIDS[@]}"; do stop_pid "$pid" "${STOP_TIMEOUT_S:-30}"; done
    if [[ -z ${WORK:-} ]]; then
        :
    elif [[ ${KEEP:-0} == 1 ]]; then
        log "kept work directory $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# run_child CMD...: runs one foreground step in the background plus `wait`, so a signal
# to the script is handled at once and the child is stopped by cleanup. Returns its status.
# `<&0`: a background command would otherwise read /dev/null, not the caller's stdin.
run_child() {
    "$@" <&0 &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=
    return "$rc"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # url pid [timeout_s]
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        curl -sf -o /dev/null "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# VmHWM (peak) or VmRSS (now) of a process, in KiB.
mem_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
