#!/usr/bin/env bash
# The WebSocket benchmark (issue 15), in one command: builds the release binary, fills a
# Python venv with the websockets client, and runs bench/ws_bench.py against fresh servers,
# one step at a time:
#   1. idle sockets: 1,000 then 10,000 held open on one instance (SQLite), 10 per user;
#      the server's RSS at each step, its pings answered, an application ping on each;
#   2. delta latency, one instance (SQLite): 10 sockets of one user follow 20 replies;
#   3. delta latency, two instances on PostgreSQL (with BENCH_DATABASE_URL): 5 sockets
#      on the writing instance A, 5 on B.
# Prints a Markdown report and saves it to bench/results/ws-latest.md.
#
# Usage: bench/ws_bench.sh
# Environment:
#   BENCH_BIN=/path/to/chatbot        use this binary, do not build
#   BENCH_DATABASE_URL=postgres://…   also step 3; the database `chatbot_ws_bench` on that
#                                     server is dropped and recreated
#   BENCH_SOCKETS=1000,10000          the idle steps
#   BENCH_HOLD_SECONDS=25             how long the idle sockets are held at the last step
#   BENCH_PING_SECONDS=10             realtime.ping_interval_seconds of the idle server
#                                     (the default is 30; 10 gets two rounds of pings
#                                     into the hold)
#   BENCH_REPLIES=20                  replies followed per latency step
#   BENCH_DELAY_MS=20                 the simulated bot's pause between words
# Needs curl, openssl, python3 (3.11+) with venv, and psql for PostgreSQL. Raises
# `ulimit -n` (as root if need be) and checks net.ipv4.ip_local_port_range.
set -euo pipefail
shopt -s inherit_errexit # set -e inside $(…) too

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
VENV="$REPO/target/ws-bench-venv"
WEBSOCKETS_VERSION=17.4
SOCKETS=${BENCH_SOCKETS:-1000,10000}
HOLD=${BENCH_HOLD_SECONDS:-25}
PING=${BENCH_PING_SECONDS:-10}
REPLIES=${BENCH_REPLIES:-20}
DELAY_MS=${BENCH_DELAY_MS:-20}
IDLE_PORT=5190
LATENCY_PORT=5191
PG_PORTS=(5192 5193)
DB_NAME=chatbot_ws_bench

log() { echo "$*" >&2; }
die() { log "ws_bench: $*"; exit 1; }

[ -z "${BENCH_DATABASE_URL:-}" ] || command -v psql >/dev/null || die "BENCH_DATABASE_URL needs psql"

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$(realpath "$BENCH_BIN")
else
    log "building the release binary…"
    (cd "$REPO" && cargo build --release --bin chatbot)
    BIN="$REPO/target/release/chatbot"
fi
[ -x "$BIN" ] || die "no executable at $BIN"

# --- the client's side: venv, file descriptors, ports ----------------------------------

if ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
    log "filling $VENV with websockets==$WEBSOCKETS_VERSION…"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "websockets==$WEBSOCKETS_VERSION"
fi
PYTHON="$VENV/bin/python"

most=0
for n in ${SOCKETS//,/ }; do [ "$n" -le "$most" ] || most=$n; done
# The client holds every socket, the server its end of each: each process needs that
# many descriptors, plus the server's database pool, listeners and some slack.
need=$((most + 1024))
if [ "$(ulimit -n)" -lt $need ]; then
    ulimit -n $need 2>/dev/null || die "ulimit -n $need refused (hard limit $(ulimit -Hn)); run as root or lower BENCH_SOCKETS"
fi
read -r low high </proc/sys/net/ipv4/ip_local_port_range
[ $((high - low + 1)) -gt $((most + 1000)) ] \
    || die "net.ipv4.ip_local_port_range ($low-$high) has too few ports for $most sockets from one address"

WORK=$(mktemp -d /tmp/chatbot-ws-bench.XXXXXX)
SECTIONS="$WORK/sections"
mkdir -p "$SECTIONS"
PIDS=()
FAILED=false

cleanup() {
    local status=$? pid
    for pid in "${PIDS[@]}"; do stop_server "$pid"; done
    if [ "$status" -eq 0 ] && ! $FAILED; then
        rm -rf "$WORK"
    else
        log "ws_bench: server logs kept in $WORK"
    fi
}
trap cleanup EXIT

# --- servers ---------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() { # name port database_url [VAR=value…]; sets SERVER_PID
    local name=$1 port=$2 url=$3
    shift 3
    port_in_use "$port" && die "127.0.0.1:$port is already in use; stop that server first"
    mkdir -p "$WORK/$name"
    # exec, so that $! is the server itself (its VmRSS, its signal).
    (cd "$WORK/$name" && exec env PORT="$port" DATABASE_URL="$url" SECRET_KEY="$SECRET" \
        CHATBOT__RATE_LIMIT__ENABLED=false CHATBOT__AUTH__BCRYPT_COST=4 RUST_LOG=warn \
        "$@" "$BIN" >server.log 2>&1) &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local deadline=$((SECONDS + 60))
    until curl -sf "http://127.0.0.1:$port/api/ready" >/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            log "ws_bench: $name did not get ready; the end of its log:"
            tail -n 30 "$WORK/$name/server.log" | sed 's/^/    /' >&2
            exit 1
        fi
        sleep 0.1
    done
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/ws")
    [ "$code" = 401 ] || die "GET /api/ws without a cookie answered $code, not 401: is $BIN older than the WebSocket endpoint?"
}

stop_server() { # pid: one of PIDS, which it leaves
    local pid rest=()
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || rest+=("$pid"); done
    [ ${#rest[@]} -lt ${#PIDS[@]} ] || return 0 # stopped already
    PIDS=("${rest[@]}")
    kill "$1" 2>/dev/null || true
    # Graceful first (the server's shutdown timeout is 30 s), then not.
    for _ in $(seq 350); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# What the servers logged (warnings and errors only: RUST_LOG=warn).
server_log_summary() { # name…
    local name lines
    for name in "$@"; do
        lines=$(grep -c . "$WORK/$name/server.log" || true)
        echo "- server log of $name: $lines lines (warnings and errors)"
        if [ "$lines" -gt 0 ]; then
            # The message of each distinct line, without its timestamp: the most frequent first.
            sed -E 's/^[^ ]+ +//' "$WORK/$name/server.log" | cut -c1-200 | sort | uniq -c \
                | sort -rn | head -5 | sed 's/^ */    - /'
        fi
    done
}

run_step() { # section python arguments…
    local section=$1
    shift
    if ! "$PYTHON" "$BENCH/ws_bench.py" "$@" >"$SECTIONS/$section"; then
        FAILED=true
        log "ws_bench: step $section found a problem (see the report)"
    fi
}

fresh_postgres() { # prints the URL of the recreated database
    PGOPTIONS='-c client_min_messages=warning' psql -q "$BENCH_DATABASE_URL" -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME" >&2 \
        || return 1
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]);
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$BENCH_DATABASE_URL" $DB_NAME
}

# --- the run ---------------------------------------------------------------------------

if [ -n "${BENCH_DATABASE_URL:-}" ]; then # first, so that a wrong URL fails at once
    postgres_url=$(fresh_postgres) || die "could not recreate the database $DB_NAME"
fi
SECRET=$(openssl rand -hex 32)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

log "== 1. idle sockets ($SOCKETS), one instance on SQLite"
start_server idle $IDLE_PORT "sqlite://$WORK/idle/bench.db" \
    CHATBOT__REALTIME__PING_INTERVAL_SECONDS="$PING"
run_step 1-idle idle "http://127.0.0.1:$IDLE_PORT" "$SERVER_PID" --counts "$SOCKETS" \
    --per-user 10 --hold "$HOLD" --ping-interval "$PING"
stop_server "$SERVER_PID"

log "== 2. delta latency, one instance on SQLite"
start_server latency-sqlite $LATENCY_PORT "sqlite://$WORK/latency-sqlite/bench.db" \
    CHATBOT__BOT__SIMULATED_DELAY_MS="$DELAY_MS"
run_step 2-latency latency "http://127.0.0.1:$LATENCY_PORT" --sockets 10 \
    --replies "$REPLIES" --delay-ms "$DELAY_MS" --title "Delta latency, one instance (SQLite)"
stop_server "$SERVER_PID"
logs=(idle latency-sqlite)

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    log "== 3. delta latency, two instances on PostgreSQL"
    # One after the other: the first applies the migrations. One secret: the cookie of A
    # is good on B.
    start_server pg-a "${PG_PORTS[0]}" "$postgres_url" CHATBOT__BOT__SIMULATED_DELAY_MS="$DELAY_MS"
    pid_a=$SERVER_PID
    start_server pg-b "${PG_PORTS[1]}" "$postgres_url" CHATBOT__BOT__SIMULATED_DELAY_MS="$DELAY_MS"
    run_step 3-latency-pg latency "http://127.0.0.1:${PG_PORTS[0]}" \
        "http://127.0.0.1:${PG_PORTS[1]}" --sockets 10 --replies "$REPLIES" \
        --delay-ms "$DELAY_MS" --title "Delta latency, two instances (PostgreSQL)"
    stop_server "$SERVER_PID"
    stop_server "$pid_a"
    logs+=(pg-a pg-b)
fi

commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$REPO" status --porcelain -- crates migrations 2>/dev/null)" ] \
    || commit="$commit (with uncommitted changes in crates/ or migrations/)"
mkdir -p "$BENCH/results"
{
    echo "# chatbot WebSocket benchmark"
    echo
    echo "- machine: $(nproc) × $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit"
    echo "- binary: $BIN${BENCH_BIN:+ (BENCH_BIN)}; client: Python $("$PYTHON" -c 'import platform; print(platform.python_version())'), websockets $WEBSOCKETS_VERSION, one process"
    echo "- command: \`${BENCH_DATABASE_URL:+BENCH_DATABASE_URL=… }BENCH_SOCKETS=$SOCKETS BENCH_HOLD_SECONDS=$HOLD BENCH_PING_SECONDS=$PING BENCH_REPLIES=$REPLIES BENCH_DELAY_MS=$DELAY_MS bench/ws_bench.sh\`"
    echo "- servers: one at a time (two for step 3), rate limits off, bcrypt cost 4, RUST_LOG=warn, fresh databases; client and server share the $(nproc) cores; ulimit -n $(ulimit -n); local ports $low–$high"
    echo "- load average (1, 5, 15 min): $LOAD_BEFORE before the run, $(cut -d' ' -f1-3 /proc/loadavg) after it"
    echo
    cat "$SECTIONS"/*
    echo "## Server logs"
    echo
    server_log_summary "${logs[@]}"
} | tee "$BENCH/results/ws-latest.md"
log ""
log "saved to bench/results/ws-latest.md"
if $FAILED; then
    die "FAIL: a step found sockets refused or closed, or deltas missing (see the report)"
fi
