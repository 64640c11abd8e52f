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

# shellcheck source=bench/benchlib.sh
source "$(dirname "$0")/benchlib.sh" bench # BENCH, REPO, and what the benchmarks share
RUST_PORT=5098
DB_NAME=chatbot_bench
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

seed() { python3 "$BENCH/seed.py" "$@"; }
report() { python3 "$BENCH/report.py" "$@"; }

check_tools
release_binaries server
work_dir chatbot-bench "logs and raw wrk output"

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

full_report() {
    report_head "chatbot load benchmark" ", Linux $(uname -r)" crates migrations
    echo "- binary: $BIN${BENCH_BIN:+ (BENCH_BIN)}"
    echo "- wrk -t2 -c32 -d$DURATION --timeout 10s --latency (logins: --timeout 30s); each server" \
        "alone on the machine, rate limits off, on a fresh database"
    echo
    report render "$RESULTS"
}

# --- the run ---------------------------------------------------------------------------

if [ -n "${BENCH_DATABASE_URL:-}" ]; then # first, so that a wrong URL fails at once
    postgres_url=$(fresh_postgres) \
        || die "could not recreate the database $DB_NAME on BENCH_DATABASE_URL's server"
fi
measure rust-sqlite start_rust $RUST_PORT "sqlite://$WORK/rust-sqlite/bench.db"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    measure rust-postgres start_rust $RUST_PORT "$postgres_url"
fi
if $VS_FLASK; then
    measure flask start_flask
fi

save_report latest.md \
    "FAIL: some acknowledged messages were not stored (see 'Messages stored under load')" \
    full_report
