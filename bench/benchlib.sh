# shellcheck shell=bash
# What the load benchmarks' scripts share (run.sh, workload.sh, streams.sh): the release
# binaries, a work directory kept when something failed, one release
# server at a time on a fresh database (started, waited for, measured in /proc, stopped),
# and the report's head and saving. Sourced as `source bench/benchlib.sh NAME`: it sets
# BENCH (this folder), REPO (the checkout) and SCRIPT (NAME, which starts its messages).
# (scripts/server-process.sh, the test scripts' stop_server, does not fit here: it waits
# 10 s, not the 35 s a server under load may take, and leaves a Flask server's workers.)

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
SCRIPT=$1
FLASK_RUN="$REPO/../shared/peers/flask_ref/run.sh"
FLASK_PORT=5001

log() { echo "$*" >&2; }
die() { log "$SCRIPT: $*"; exit 1; }

# --- binaries ----------------------------------------------------------------------------

# Sets BIN: BENCH_BIN, or the release server built here. With `loadgen`, also LOADGEN:
# BENCH_LOADGEN or the release load generator (built with the server, or alone if
# BENCH_BIN is set and it is missing).
release_binaries() { # server [loadgen]
    if [ "${2:-}" != loadgen ]; then
        if [ -n "${BENCH_BIN:-}" ]; then
            BIN=$(realpath "$BENCH_BIN")
        else
            log "building the release binary…"
            (cd "$REPO" && cargo build --release --locked -p chatbot-server)
            BIN="$REPO/target/release/chatbot"
        fi
        [ -x "$BIN" ] || die "no executable at $BIN"
        return
    fi
    LOADGEN=${BENCH_LOADGEN:-$REPO/target/release/loadgen}
    if [ -n "${BENCH_BIN:-}" ]; then
        BIN=$(realpath "$BENCH_BIN")
        if [ ! -x "$LOADGEN" ]; then
            log "building the load generator…"
            (cd "$REPO" && cargo build --release -p chatbot-loadgen)
        fi
    else
        log "building the release binaries…"
        (cd "$REPO" && cargo build --release -p chatbot-server -p chatbot-loadgen)
        BIN="$REPO/target/release/chatbot"
    fi
    [ -x "$BIN" ] || die "no executable at $BIN"
    [ -x "$LOADGEN" ] || die "no executable at $LOADGEN"
    LOADGEN=$(realpath "$LOADGEN")
}

# The checks of run.sh and workload.sh: wrk, the Flask reference with --vs-flask (VS_FLASK),
# psql with BENCH_DATABASE_URL.
check_tools() {
    command -v wrk >/dev/null || die "install wrk: apt-get install -y wrk"
    $VS_FLASK && { [ -x "$FLASK_RUN" ] || die "no Flask reference at $FLASK_RUN"; }
    [ -z "${BENCH_DATABASE_URL:-}" ] || command -v psql >/dev/null || die "BENCH_DATABASE_URL needs psql"
}

# --- the work directory --------------------------------------------------------------------

# Makes WORK (/tmp/<prefix>.XXXXXX) with RESULTS in it, and removes it at exit, after
# stopping the server, unless the script failed or set FAILED: then it says where `what`
# was kept.
work_dir() { # prefix what
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    # shellcheck disable=SC2034 # the scripts' own
    RESULTS="$WORK/results"
    SERVER_PID=""
    FAILED=false
    KEPT=$2
    trap cleanup EXIT
}

cleanup() {
    local status=$?
    stop_server
    if [ "$status" -eq 0 ] && ! $FAILED; then
        rm -rf "$WORK"
    else
        log "$SCRIPT: $KEPT kept in $WORK"
    fi
}

# --- servers: one at a time, in SERVER_PID; NAME names it in messages ------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A server that fails to come up shows why: the tail of its log.
fail_start() {
    log "$SCRIPT: $NAME $1; the end of $SERVER_LOG:"
    tail -n 30 "$SERVER_LOG" | sed 's/^/    /' >&2
    exit 1
}

wait_ready() { # seconds
    local deadline=$((SECONDS + $1))
    until curl -sf "$BASE/api/test" >/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || fail_start "exited during start-up"
        [ $SECONDS -lt $deadline ] || fail_start "did not answer GET /api/test within $1 s"
        sleep 0.2
    done
}

# The release server BIN on `port`, run in DIR (its server.log there), rate limits off,
# warnings and errors logged only, plus the settings given.
start_rust() { # port database_url [VAR=value…]
    local port=$1 url=$2
    shift 2
    port_in_use "$port" && die "127.0.0.1:$port is already in use; stop that server first"
    # exec, so that $! is the server itself (its VmHWM, its CPU time, its signal).
    (cd "$DIR" && exec env PORT="$port" DATABASE_URL="$url" SECRET_KEY="$(openssl rand -hex 32)" \
        CHATBOT__RATE_LIMIT__ENABLED=false CHATBOT__LOG__LEVEL=warn "$@" \
        "$BIN" >server.log 2>&1) &
    SERVER_PID=$! SERVER_LOG="$DIR/server.log" BASE="http://127.0.0.1:$port"
    wait_ready 60
}

# The Flask reference (FLASK_RUN) on FLASK_PORT, its database and log in DIR.
start_flask() {
    port_in_use $FLASK_PORT && die "127.0.0.1:$FLASK_PORT is already in use; stop that server first"
    # run.sh execs gunicorn, so $! is the master. Its first start fills a venv: minutes.
    PORT=$FLASK_PORT DB_FILE="$DIR/flask.db" "$FLASK_RUN" >"$DIR/server.log" 2>&1 &
    SERVER_PID=$! SERVER_LOG="$DIR/server.log" BASE="http://127.0.0.1:$FLASK_PORT"
    wait_ready 600
}

server_pids() { echo "$SERVER_PID"; pgrep -P "$SERVER_PID" || true; }

peak_rss_kb() { # summed over the server and its children (gunicorn's workers)
    local pid total=0 kb
    for pid in $(server_pids); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo $total
}

cpu_ticks() { # utime + stime of the server and its children, in clock ticks (CLK_TCK a second)
    local pid total=0 ticks
    for pid in $(server_pids); do
        # Fields 14 and 15; counted after the command name, which ends with ")".
        ticks=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
        total=$((total + ${ticks:-0}))
    done
    echo $total
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    # Graceful: the Rust server first finishes the logins still queued (up to its 30 s
    # shutdown timeout), gunicorn its workers' requests.
    for _ in $(seq 350); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    # A server that ignores a polite stop for 35 s goes now, workers first (while they are
    # still its children, so the ids are surely theirs).
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$SCRIPT: $NAME did not stop within 35 s; killing it"
        # shellcheck disable=SC2046 # one pid a word
        kill -9 $(server_pids | tac) 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

fresh_postgres() { # prints the URL of the recreated database DB_NAME
    PGOPTIONS='-c client_min_messages=warning' psql -q "$BENCH_DATABASE_URL" -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >&2 \
        || return 1
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]);
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$BENCH_DATABASE_URL" "$DB_NAME"
}

# --- the report ----------------------------------------------------------------------------

# HEAD's short hash, and whether the folders given have uncommitted changes.
commit_info() { # folder…
    local commit folders
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$REPO" status --porcelain -- "$@" 2>/dev/null)" ]; then
        folders=$(printf '%s/, ' "${@:1:$#-1}")
        commit="$commit (with uncommitted changes in ${folders%, } or ${*: -1}/)"
    fi
    echo "$commit"
}

cpu_model() { awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo; }

# The head of a report: its title, then the machine (`machine` after its cores and CPU) and
# the date and commit (noting uncommitted changes in `folder…`).
report_head() { # title machine folder…
    local title=$1 machine=$2 commit
    shift 2
    commit=$(commit_info "$@")
    echo "# $title"
    echo
    echo "- machine: $(nproc) × $(cpu_model)$machine"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit"
}

# Prints what `command…` writes and saves it to bench/results/<file>; then, if FAILED,
# exits with `failure`.
save_report() { # file failure command…
    local file=$1 failure=$2
    shift 2
    mkdir -p "$BENCH/results"
    "$@" | tee "$BENCH/results/$file"
    log ""
    log "saved to bench/results/$file"
    if $FAILED; then
        die "$failure"
    fi
}
