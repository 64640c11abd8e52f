#!/usr/bin/env bash
# The load benchmark, in one command: builds the release binary, then for each server in
# turn (only one runs at a time) starts it on a fresh database, seeds it through the API,
# measures it with wrk and stops it. Prints a Markdown report and saves it to
# bench/results/latest.md.
#
# Usage: bench/run.sh [--vs-flask] [--quick]
#   --vs-flask   also measure the Flask reference (../shared/peers/flask_ref, port 5001)
#   --quick      3 s per wrk run instead of 10 s; 1,000 conversations for pagination, not 10,000
# Environment:
#   BENCH_BIN=/path/to/chatbot        use this binary, do not build
#   BENCH_DATABASE_URL=postgres://…   also measure on PostgreSQL; the database
#                                     `chatbot_bench` on that server is dropped and recreated
#   BENCH_SEED_THREADS=8              client threads seeding the pagination data
# Needs wrk, curl, openssl, python3 (3.11+), and psql for PostgreSQL.
set -euo pipefail
shopt -s inherit_errexit # set -e inside $(…) too
# Command substitutions are assigned to a variable before use: as a command's argument
# their failure would go unnoticed.

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
FLASK_RUN="$REPO/../shared/peers/flask_ref/run.sh"
RUST_PORT=5098
FLASK_PORT=5001
DURATION=10s
BIG_CONVERSATIONS=10000
VS_FLASK=false
SEEDED_MESSAGES=400 # seed.py small: 20 conversations x 10 POSTs x (user + bot)

for arg in "$@"; do
    case $arg in
        --vs-flask) VS_FLASK=true ;;
        --quick) DURATION=3s BIG_CONVERSATIONS=1000 ;;
        *) echo "usage: bench/run.sh [--vs-flask] [--quick]" >&2; exit 2 ;;
    esac
done

log() { echo "$*" >&2; }
die() { log "bench: $*"; exit 1; }
seed() { python3 "$BENCH/seed.py" "$@"; }
report() { python3 "$BENCH/report.py" "$@"; }

command -v wrk >/dev/null || die "install wrk: apt-get install -y wrk"
$VS_FLASK && { [ -x "$FLASK_RUN" ] || die "no Flask reference at $FLASK_RUN"; }
[ -z "${BENCH_DATABASE_URL:-}" ] || command -v psql >/dev/null || die "BENCH_DATABASE_URL needs psql"

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$(realpath "$BENCH_BIN")
else
    log "building the release binary…"
    (cd "$REPO" && cargo build --release --locked -p chatbot-server)
    BIN="$REPO/target/release/chatbot"
fi
[ -x "$BIN" ] || die "no executable at $BIN"

WORK=$(mktemp -d /tmp/chatbot-bench.XXXXXX)
RESULTS="$WORK/results"
SERVER_PID=""
FAILED=false

cleanup() {
    local status=$?
    stop_server
    if [ "$status" -eq 0 ] && ! $FAILED; then
        rm -rf "$WORK"
    else
        log "bench: logs and raw wrk output kept in $WORK"
    fi
}
trap cleanup EXIT

# --- servers ---------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A server that fails to come up shows why: the tail of its log.
fail_start() {
    log "bench: $NAME $1; the end of $SERVER_LOG:"
    tail -n 30 "$SERVER_LOG" | sed 's/^/    /' >&2
    exit 1
}

wait_ready() {
    local deadline=$((SECONDS + $1))
    until curl -sf "$BASE/api/test" >/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || fail_start "exited during start-up"
        [ $SECONDS -lt $deadline ] || fail_start "did not answer GET /api/test within $1 s"
        sleep 0.2
    done
}

start_rust() { # database_url
    port_in_use $RUST_PORT && die "127.0.0.1:$RUST_PORT is already in use; stop that server first"
    # exec, so that $! is the server itself (its VmHWM, its signal).
    (cd "$DIR" && PORT=$RUST_PORT DATABASE_URL="$1" SECRET_KEY=$(openssl rand -hex 32) \
        CHATBOT__RATE_LIMIT__ENABLED=false CHATBOT__LOG__LEVEL=warn \
        exec "$BIN" >server.log 2>&1) &
    SERVER_PID=$! SERVER_LOG="$DIR/server.log" BASE="http://127.0.0.1:$RUST_PORT"
    wait_ready 60
}

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
        log "bench: $NAME did not stop within 35 s; killing it"
        kill -9 $(server_pids | tac) 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# --- measurements ----------------------------------------------------------------------

fact() { echo "$1=$2" >>"$OUT/facts"; }

bench_wrk() { # name path [wrk options…]
    local name=$1 path=$2
    shift 2
    log "  wrk $name: $path"
    wrk -t2 -c32 -d$DURATION --timeout 10s --latency "$@" "$BASE$path" >"$OUT/$name.wrk" \
        || { cat "$OUT/$name.wrk" >&2; die "wrk failed on $NAME $path"; }
    log "    $(report summary "$OUT/$name.wrk")"
}

check_stored() { # cookie
    local counts stored busiest busiest_n acknowledged expected
    counts=$(seed count "$BASE" "$1")
    read -r stored busiest busiest_n <<<"$counts"
    acknowledged=$(report acknowledged "$OUT/messages.wrk")
    expected=$((SEEDED_MESSAGES + 2 * acknowledged))
    fact stored "$stored"
    fact acknowledged "$acknowledged"
    fact seeded_messages $SEEDED_MESSAGES
    BUSIEST=$busiest BUSIEST_N=$busiest_n
    if [ "$stored" -lt "$expected" ]; then
        FAILED=true
        log "  FAIL: $NAME acknowledged $acknowledged message POSTs, so at least $expected" \
            "messages should be stored, but only $stored are"
    else
        log "  stored $stored messages >= $expected expected"
    fi
}

measure_logins() {
    local seconds
    seconds=$(seed hash-time "$BASE")
    fact hash_seconds "$seconds"
    # Logins queue for the hash: 32 connections wait longer than the usual 10 s timeout.
    bench_wrk login /api/login -s "$BENCH/login.lua" --timeout 30s
}

measure_pagination() { # bench's cookie
    local cookie=$1 big_cookie big_id out paging
    paging=$(seed has-paging "$BASE" "$cookie")
    if [ "$paging" = no ]; then
        log "  pagination: skipped, GET /api/conversations?limit=1 returns a JSON array" \
            "(this binary has no pagination API)"
        fact paging no
        return
    fi
    fact paging yes
    log "  seeding user big: $BIG_CONVERSATIONS conversations x 20 messages…"
    out=$(seed big "$BASE" "$OUT" $BIG_CONVERSATIONS)
    fact big_summary "$out"
    fact big_conversations $BIG_CONVERSATIONS
    big_cookie=$(<"$OUT/big_cookie") big_id=$(<"$OUT/big_conversation_id")

    local deep_conversations deep_messages page walk
    out=$(seed walk-conversations "$BASE" "$big_cookie" $BIG_CONVERSATIONS)
    { read -r deep_conversations; read -r page; read -r walk; } <<<"$out"
    fact deep_conversation_page "$page"
    fact conversation_walk "$walk"
    log "  conversations: $walk"
    out=$(seed walk-messages "$BASE" "$cookie" "$BUSIEST" "$BUSIEST_N")
    { read -r deep_messages; read -r page; read -r walk; } <<<"$out"
    fact deep_message_page "$page"
    fact message_walk "$walk"
    log "  messages: $walk"
    fact busiest_messages "$BUSIEST_N"

    bench_wrk p_list_bench "/api/conversations?limit=50" -H "Cookie: $cookie"
    bench_wrk p_list_big "/api/conversations?limit=50" -H "Cookie: $big_cookie"
    bench_wrk p_list_deep "$deep_conversations" -H "Cookie: $big_cookie"
    bench_wrk p_messages_big "/api/conversations/$big_id/messages?limit=50" -H "Cookie: $big_cookie"
    bench_wrk p_messages_busy "/api/conversations/$BUSIEST/messages?limit=50" -H "Cookie: $cookie"
    bench_wrk p_messages_deep "$deep_messages" -H "Cookie: $cookie"
}

# One server from start to stop: NAME is rust-sqlite, rust-postgres or flask.
measure() { # name start_command…
    NAME=$1
    shift
    DIR="$WORK/$NAME" OUT="$RESULTS/$NAME"
    mkdir -p "$DIR" "$OUT"
    log "== $NAME: starting"
    "$@"
    log "  seeding user bench: 20 conversations x 20 messages"
    local size cookie targets
    size=$(seed small "$BASE" "$DIR")
    fact list_bytes "$size"
    cookie=$(<"$DIR/cookie")

    bench_wrk test /api/test
    bench_wrk list /api/conversations -H "Cookie: $cookie"
    # A conversation takes one message at a time (a second while the reply is written
    # is a 409): 32 connections send to 256 conversations, each wrk thread to its own.
    targets=$(seed conversations "$BASE" "$cookie" 256)
    BENCH_CONVERSATION_IDS=$targets bench_wrk messages "/api/conversations/${targets%%,*}/messages" \
        -H "Cookie: $cookie" -s "$BENCH/messages.lua"
    check_stored "$cookie"
    local rss
    rss=$(peak_rss_kb)
    fact rss_main_kb "$rss"
    [ "$NAME" = flask ] || measure_pagination "$cookie"
    # Last: logins the flood leaves queued keep the CPU busy after wrk is gone.
    measure_logins
    rss=$(peak_rss_kb)
    fact rss_final_kb "$rss"
    stop_server
}

fresh_postgres() { # prints the URL of the recreated database chatbot_bench
    PGOPTIONS='-c client_min_messages=warning' psql -q "$BENCH_DATABASE_URL" -v ON_ERROR_STOP=1 \
        -c 'DROP DATABASE IF EXISTS chatbot_bench WITH (FORCE)' -c 'CREATE DATABASE chatbot_bench' >&2 \
        || return 1
    python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]);
print(u.urlunsplit(p._replace(path="/chatbot_bench")))' "$BENCH_DATABASE_URL"
}

machine_info() {
    local commit
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -z "$(git -C "$REPO" status --porcelain -- crates migrations 2>/dev/null)" ] \
        || commit="$commit (with uncommitted changes in crates/ or migrations/)"
    echo "# chatbot load benchmark"
    echo
    echo "- machine: $(nproc) × $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit"
    echo "- binary: $BIN${BENCH_BIN:+ (BENCH_BIN)}"
    echo "- wrk -t2 -c32 -d$DURATION --timeout 10s --latency (logins: --timeout 30s); each server" \
        "alone on the machine, rate limits off, on a fresh database"
    echo
}

# --- the run ---------------------------------------------------------------------------

if [ -n "${BENCH_DATABASE_URL:-}" ]; then # first, so that a wrong URL fails at once
    postgres_url=$(fresh_postgres) \
        || die "could not recreate the database chatbot_bench on BENCH_DATABASE_URL's server"
fi
measure rust-sqlite start_rust "sqlite://$WORK/rust-sqlite/bench.db"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    measure rust-postgres start_rust "$postgres_url"
fi
if $VS_FLASK; then
    measure flask start_flask
fi

mkdir -p "$BENCH/results"
{ machine_info; report render "$RESULTS"; } | tee "$BENCH/results/latest.md"
log ""
log "saved to bench/results/latest.md"
if $FAILED; then
    die "FAIL: some acknowledged messages were not stored (see 'Messages stored under load')"
fi
