# shellcheck shell=bash
#
# compose/lib.sh - helpers sourced by the other compose/*.sh scripts.
#
# Usage (from a script in compose/):
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   ROOT                 repository root
#   RUN_DIR              ${TICKETING_RUN_DIR:-$ROOT/.run}   (git-ignored runtime state)
#   CACHE_DIR            ${TICKETING_CACHE_DIR:-$HOME/.cache/ticketing}   (outside git)
#   KAFKA_VERSION        ${KAFKA_VERSION:-4.4.0}
#   KAFKA_LIBS           $CACHE_DIR/kafka-$KAFKA_VERSION/libs
#   KAFKA_LIBS_MARKER    marker file written after a completed jar fetch
#   log MSG... / warn MSG... / die MSG...
#   wait_for DESC TIMEOUT_SECONDS CMD [ARGS...]   poll CMD until it succeeds or the deadline passes
#   start_bg NAME LOGFILE CMD [ARGS...]           start CMD detached, pid in $RUN_DIR/NAME.pid
#   is_running NAME                               is the process of $RUN_DIR/NAME.pid alive?
#   pid_of NAME                                   print the pid from $RUN_DIR/NAME.pid
#   stop_bg NAME [TIMEOUT_SECONDS]                TERM its process group, wait, then KILL
#   tcp_open HOST PORT                            does HOST:PORT accept TCP connections?
#   take_lock NAME [TIMEOUT_SECONDS]              serialize up/down of NAME ($RUN_DIR/NAME.lock)

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${TICKETING_RUN_DIR:-$ROOT/.run}"
CACHE_DIR="${TICKETING_CACHE_DIR:-${HOME:-/root}/.cache/ticketing}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_LIBS_MARKER="$KAFKA_LIBS/.fetch-complete"
SCRIPT_NAME="$(basename "${0:-compose}")"
export ROOT RUN_DIR CACHE_DIR KAFKA_VERSION KAFKA_LIBS KAFKA_LIBS_MARKER

log() {
    printf '[%s] %s: %s\n' "$(date +%H:%M:%S)" "$SCRIPT_NAME" "$*" >&2
}

warn() {
    log "WARNING: $*"
}

die() {
    log "ERROR: $*"
    exit 1
}

# Seconds since the epoch, as an integer.
now_s() {
    date +%s
}

# wait_for DESC TIMEOUT_SECONDS CMD [ARGS...]
# Runs CMD repeatedly (short pause between tries) until it exits 0.
# Returns 1 after TIMEOUT_SECONDS without success. CMD output goes to stderr.
wait_for() {
    local desc=$1 timeout=$2
    shift 2
    local deadline=$(($(now_s) + timeout))
    local tries=0
    while true; do
        tries=$((tries + 1))
        if "$@" >&2; then
            return 0
        fi
        if (($(now_s) >= deadline)); then
            log "timed out after ${timeout}s ($tries tries) waiting for: $desc"
            return 1
        fi
        sleep 0.25
    done
}

pid_file() {
    printf '%s/%s.pid\n' "$RUN_DIR" "$1"
}

# Start time of a process (field 22 of /proc/PID/stat), used to detect pid reuse.
proc_start_time() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    local -a fields
    read -r -a fields <<<"$rest"
    printf '%s\n' "${fields[19]}"
}

# True when the process is alive and not a zombie.
pid_alive() {
    local pid=$1 stat rest
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    [[ ${rest:0:1} != Z ]]
}

pid_gone() {
    ! pid_alive "$1"
}

# pid_of NAME: prints the recorded pid (empty output and status 1 when there is none).
pid_of() {
    local f
    f=$(pid_file "$1")
    [[ -s $f ]] || return 1
    local pid
    pid=$(head -n1 "$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

# is_running NAME: the process recorded in $RUN_DIR/NAME.pid is alive and is the same
# process (same start time) that was recorded.
is_running() {
    local f pid recorded actual
    f=$(pid_file "$1")
    pid=$(pid_of "$1") || return 1
    pid_alive "$pid" || return 1
    recorded=$(sed -n 2p "$f")
    if [[ -n $recorded ]]; then
        actual=$(proc_start_time "$pid") || return 1
        [[ $recorded == "$actual" ]] || return 1
    fi
    return 0
}

# start_bg NAME LOGFILE CMD [ARGS...]
# Starts CMD in its own session, detached from the caller's terminal, with stdin from
# /dev/null and stdout+stderr appended to LOGFILE. Its pid (and start time) go to
# $RUN_DIR/NAME.pid, written by the process itself just before it execs CMD. The lock fd of
# take_lock is closed for it, so a long-running service never holds the lock.
start_bg() {
    local name=$1 logfile=$2
    shift 2
    local f
    f=$(pid_file "$name")
    mkdir -p "$RUN_DIR" "$(dirname "$logfile")"
    rm -f "$f" "$f.tmp"
    # shellcheck disable=SC2016  # expanded by the inner shell, on purpose
    setsid -f bash -c '
        pidfile=$1; shift
        stat=$(cat /proc/$$/stat); rest=${stat##*) }; read -r -a fields <<<"$rest"
        printf "%s\n%s\n" "$$" "${fields[19]}" >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
        exec "$@"
    ' start_bg "$f" "$@" >>"$logfile" 2>&1 </dev/null 9>&-
    wait_for "pid file $f" 10 test -s "$f" || die "could not start $name"
}

# stop_bg NAME [TIMEOUT_SECONDS]: TERM, wait up to TIMEOUT_SECONDS (default 30), then KILL.
stop_bg() {
    local name=$1 timeout=${2:-30} pid f
    f=$(pid_file "$name")
    if ! is_running "$name"; then
        rm -f "$f"
        return 0
    fi
    pid=$(pid_of "$name")
    log "stopping $name (pid $pid)"
    # start_bg made the process a session (and group) leader: signal its whole group,
    # falling back to the pid alone.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$name (pid $pid) to exit" "$timeout" pid_gone "$pid"; then
        warn "$name (pid $pid) ignored TERM for ${timeout}s; sending KILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        wait_for "$name (pid $pid) to die" 10 pid_gone "$pid" ||
            die "$name (pid $pid) survived KILL"
    fi
    rm -f "$f"
    log "$name stopped"
}

# tcp_open HOST PORT: true when a TCP connection to HOST:PORT succeeds.
tcp_open() {
    # shellcheck disable=SC2016  # expanded by the inner shell, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Print who listens on a TCP port (diagnostics only; empty when ss is missing).
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null || true
    fi
}

# take_lock NAME [TIMEOUT_SECONDS]: hold an exclusive lock on $RUN_DIR/NAME.lock (fd 9) until
# the script exits, so that concurrent "up"/"down" calls for the same service run one at a time.
take_lock() {
    local name=$1 timeout=${2:-180}
    mkdir -p "$RUN_DIR"
    exec 9>>"$RUN_DIR/$name.lock"
    flock -w "$timeout" 9 || die "another compose script holds $RUN_DIR/$name.lock"
}
