#!/usr/bin/env bash
# The workload benchmark (issue 18), in one command: builds the release binaries (the
# server and bench/loadgen), then for each server in turn (only one runs at a time)
# starts it on a fresh database, seeds many users through the API and measures:
#   1. the mix: 32 connections for 30 s, each request made as a random user that no
#      other connection is using at that moment: 60 % GET /api/conversations?limit=20,
#      20 % a page of messages, 15 % POST a message (simulated bot, plain JSON), 5 %
#      rename; then every stored message is counted against the acknowledged POSTs;
#   2. POST only, 32 connections as 32 different users (Rust only);
#   3. POST only, 32 connections as one user, each to its own conversation (Rust only);
#   4. revalidation with wrk: GET /api/test, and GET /api/conversations?limit=20 with
#      If-None-Match set to the list's ETag (304, empty body) (Rust only);
# with the server's peak RSS (VmHWM) and CPU time. Prints a Markdown report and saves it
# to bench/results/workload.md.
#
# Usage: bench/workload.sh [--vs-flask] [--quick]
#   --vs-flask   also the Flask reference (../shared/peers/flask_ref, port 5001): seeded
#                with BENCH_FLASK_USERS users, then the mix without the messages page
#                (it has no pages), its list being the seed's whole list
#   --quick      100 users (Flask: 32) and 10 s runs (5 s for wrk and the POST-only runs)
# Environment:
#   BENCH_BIN=/path/to/chatbot        use this server binary, do not build
#   BENCH_LOADGEN=/path/to/loadgen    use this load generator (default: the release one,
#                                     built if missing)
#   BENCH_DATABASE_URL=postgres://…   also measure on PostgreSQL; the database
#                                     `chatbot_workload` on that server is dropped and
#                                     recreated
#   BENCH_USERS=1000                  users seeded on the Rust server (each 20 × 20)
#   BENCH_FLASK_USERS=200             users seeded on Flask (--quick: 32). Seeding it ran
#                                     at 100-300 requests/s (2 workers on one SQLite file):
#                                     200 users took 2.5 min, 1,000 would take 12-40 min
#   BENCH_DURATION=30                 seconds of the mix
# Needs curl, openssl, wrk, python3 (3.11+), and psql for PostgreSQL.
set -euo pipefail
shopt -s inherit_errexit # set -e inside $(…) too

# shellcheck source=bench/benchlib.sh
source "$(dirname "$0")/benchlib.sh" workload # BENCH, REPO, and what the benchmarks share
RUST_PORT=5097
DB_NAME=chatbot_workload
CONNECTIONS=32
CONVERSATIONS=20
MESSAGES=20
VS_FLASK=false
QUICK=false

for arg in "$@"; do
    case $arg in
        --vs-flask) VS_FLASK=true ;;
        --quick) QUICK=true ;;
        *) echo "usage: bench/workload.sh [--vs-flask] [--quick]" >&2; exit 2 ;;
    esac
done
if $QUICK; then
    USERS=${BENCH_USERS:-100} FLASK_USERS=${BENCH_FLASK_USERS:-32}
    DURATION=${BENCH_DURATION:-10} SHORT=5
else
    USERS=${BENCH_USERS:-1000} FLASK_USERS=${BENCH_FLASK_USERS:-200}
    DURATION=${BENCH_DURATION:-30} SHORT=10
fi

# Each connection acts as a user no other connection is using at the time.
for n in "$USERS" "$FLASK_USERS"; do
    [ "$n" -ge $CONNECTIONS ] || die "BENCH_USERS and BENCH_FLASK_USERS must be at least $CONNECTIONS"
done

check_tools
release_binaries server loadgen
CLK_TCK=$(getconf CLK_TCK)
work_dir chatbot-workload "logs and raw results"

# The Rust server's settings beyond start_rust's (rate limits off): bcrypt at its cheapest
# cost and a deep hashing queue, so that seeding a thousand users takes seconds and no
# signup is refused with 503.
RUST_SETTINGS=(CHATBOT__AUTH__BCRYPT_COST=4 CHATBOT__AUTH__HASH_QUEUE_PER_THREAD=10000)

# --- measurements ------------------------------------------------------------------------

fact() { echo "$1=$2" >>"$OUT/facts"; }

loadgen() { "$LOADGEN" "$@"; }

# The server's CPU time during a command, in seconds, as the fact cpu_<name>, and its
# peak RSS so far as rss_<name>_kb.
timed() { # name command…
    local name=$1 before after
    shift
    before=$(cpu_ticks)
    "$@"
    after=$(cpu_ticks)
    fact "cpu_$name" "$(awk -v t=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}')"
    fact "rss_${name}_kb" "$(peak_rss_kb)"
}

json_field() { # file expression: a Python expression on `d`, the file's JSON
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# Counts the stored messages of the users in `users_file` into $OUT/count-<name>.json and
# checks them against what should be there: at least `expected`.
check_stored() { # name users_file expected
    local stored
    loadgen count --url "$BASE" --users "$2" >"$OUT/count-$1.json"
    stored=$(json_field "$OUT/count-$1.json" 'd["messages"]')
    fact "expected_$1" "$3"
    if [ "$stored" -lt "$3" ]; then
        FAILED=true
        log "  FAIL: $NAME $1: at least $3 messages should be stored, but only $stored are"
    else
        log "  $1: stored $stored messages >= $3 expected"
    fi
}

mix() { # name loadgen mix options…
    local name=$1
    shift
    log "  $name: loadgen mix $*"
    timed "$name" loadgen mix --url "$BASE" --connections $CONNECTIONS "$@" >"$OUT/$name.json"
    log "    $(json_field "$OUT/$name.json" \
        '"{:,.0f} req/s, {} errors, statuses {}".format(d["rps"], d["errors"], d["statuses"])')"
}

bench_wrk() { # name path [wrk options…]
    local name=$1 path=$2
    shift 2
    log "  wrk $name: $path"
    timed "$name" wrk -t2 -c$CONNECTIONS -d${SHORT}s --timeout 10s --latency "$@" "$BASE$path" \
        >"$OUT/$name.wrk" || { cat "$OUT/$name.wrk" >&2; die "wrk failed on $NAME $path"; }
    log "    $(python3 "$BENCH/report.py" summary "$OUT/$name.wrk")"
}

# GET /api/test, then the first user's list page with If-None-Match: its ETag.
revalidation() {
    local cookie path="/api/conversations?limit=20" etag status size
    cookie=$(json_field "$DIR/users.json" 'd[0]["cookie"]')
    bench_wrk test /api/test
    etag=$(curl -s -o /dev/null -D - -H "Cookie: $cookie" "$BASE$path" \
        | awk 'tolower($1) == "etag:" {sub(/^[^:]*: */, ""); sub(/\r$/, ""); print}')
    if [ -z "$etag" ]; then
        log "  revalidation: no ETag on GET $path; measuring the plain 200s"
        fact etag none
        bench_wrk revalidate "$path" -H "Cookie: $cookie"
        return
    fi
    read -r status size < <(curl -s -o /dev/null -w '%{http_code} %{size_download}\n' \
        -H "Cookie: $cookie" -H "If-None-Match: $etag" "$BASE$path")
    fact etag "$etag"
    fact etag_check "$status $size"
    log "  revalidation: ETag $etag; If-None-Match answers $status with $size bytes"
    if [ "$status" != 304 ] || [ "$size" != 0 ]; then
        log "  WARNING: expected 304 with an empty body"
    fi
    bench_wrk revalidate "$path" -H "Cookie: $cookie" -H "If-None-Match: $etag"
}

# One server from start to stop: NAME is rust-sqlite, rust-postgres or flask.
measure() { # name users start_command…
    NAME=$1
    local users=$2 seeded acknowledged expected
    shift 2
    DIR="$WORK/$NAME" OUT="$RESULTS/$NAME"
    mkdir -p "$DIR" "$OUT"
    log "== $NAME: starting"
    "$@"
    fact users "$users"
    log "  seeding $users users × $CONVERSATIONS conversations × $MESSAGES messages"
    timed seed loadgen seed --url "$BASE" --users "$users" --conversations $CONVERSATIONS \
        --messages $MESSAGES --concurrency $CONNECTIONS --out "$DIR/users.json" >"$OUT/seed.json"
    log "    $(json_field "$OUT/seed.json" '"{:,} requests in {:.0f} s".format(d["requests"], d["seconds"])')"
    seeded=$(json_field "$OUT/seed.json" 'd["messages_stored"]')

    local flask_options=()
    [ "$NAME" != flask ] || flask_options=(--flask)
    mix mix --users "$DIR/users.json" --duration "$DURATION" "${flask_options[@]}"
    acknowledged=$(json_field "$OUT/mix.json" 'd["acknowledged_posts"]')
    expected=$((seeded + 2 * acknowledged))
    check_stored mix "$DIR/users.json" $expected

    if [ "$NAME" != flask ]; then
        mix post32 --users "$DIR/users.json" --duration $SHORT --mix post=100
        acknowledged=$(json_field "$OUT/post32.json" 'd["acknowledged_posts"]')
        expected=$(json_field "$OUT/count-mix.json" 'd["messages"]')
        check_stored post32 "$DIR/users.json" $((expected + 2 * acknowledged))

        log "  seeding user solo0000: $CONNECTIONS empty conversations"
        loadgen seed --url "$BASE" --users 1 --prefix solo --conversations $CONNECTIONS \
            --messages 0 --out "$DIR/solo.json" >/dev/null
        mix postsolo --users "$DIR/solo.json" --same-user --duration $SHORT --mix post=100
        acknowledged=$(json_field "$OUT/postsolo.json" 'd["acknowledged_posts"]')
        check_stored postsolo "$DIR/solo.json" $((2 * acknowledged))

        revalidation
    fi
    fact rss_final_kb "$(peak_rss_kb)"
    stop_server
}

full_report() {
    report_head "chatbot workload benchmark" ", $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' \
        /proc/meminfo), Linux $(uname -r); the load generator runs on the same cores" \
        crates migrations bench/loadgen
    echo "- server: $BIN${BENCH_BIN:+ (BENCH_BIN)}; client: $LOADGEN"
    echo "- each server alone on the machine, on a fresh database, rate limits off, bcrypt" \
        "cost 4 (Rust); $CONNECTIONS keep-alive connections; the mix ran ${DURATION} s, the" \
        "POST-only and wrk runs ${SHORT} s"
    echo
    python3 "$BENCH/loadgen_report.py" workload "$RESULTS"
}

# --- the run -----------------------------------------------------------------------------

if [ -n "${BENCH_DATABASE_URL:-}" ]; then # first, so that a wrong URL fails at once
    postgres_url=$(fresh_postgres) \
        || die "could not recreate the database $DB_NAME on BENCH_DATABASE_URL's server"
fi
measure rust-sqlite "$USERS" start_rust $RUST_PORT "sqlite://$WORK/rust-sqlite/bench.db" \
    "${RUST_SETTINGS[@]}"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    measure rust-postgres "$USERS" start_rust $RUST_PORT "$postgres_url" "${RUST_SETTINGS[@]}"
    PGOPTIONS='-c client_min_messages=warning' psql -q "$BENCH_DATABASE_URL" \
        -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >&2 || true
fi
if $VS_FLASK; then
    measure flask "$FLASK_USERS" start_flask
fi

save_report workload.md \
    "FAIL: some acknowledged messages were not stored (see 'Nothing acknowledged is lost')" \
    full_report
