#!/usr/bin/env bash
# The streaming benchmark (issue 18), in one command: builds the release binaries (the
# server and bench/loadgen), then for each N a fresh server on a fresh SQLite database
# takes N streamed replies at once (`loadgen streams`): N users' conversations, N
# connections, N POSTs with Accept: text/event-stream sent together; the simulated bot
# pauses 20 ms between the words of 100-word replies. Per N it reports how many
# completed, whether each reply's deltas and stored text match its `done`, the delay the
# server and client added to each 20 ms gap, the time to the first delta, the server's
# peak RSS (VmHWM) and its CPU time per 1,000 deltas. Prints a Markdown report and saves
# it to bench/results/streams.md.
#
# Usage: bench/streams.sh [N ...]      (default: 100 1000 2000)
# Environment:
#   BENCH_BIN=/path/to/chatbot        use this server binary, do not build
#   BENCH_LOADGEN=/path/to/loadgen    use this load generator (default: the release one,
#                                     built if missing)
#   BENCH_DELAY_MS=20                 bot.simulated_delay_ms
#   BENCH_REPLY_WORDS=100             bot.simulated_reply_words (0: leave the setting
#                                     alone and check no word count)
# Needs curl and openssl. Raises the soft `ulimit -n` (each stream holds a socket at
# both ends).
set -euo pipefail
shopt -s inherit_errexit # set -e inside $(…) too

# shellcheck source=bench/benchlib.sh
source "$(dirname "$0")/benchlib.sh" streams # BENCH, REPO, and what the benchmarks share
PORT=5096
DELAY_MS=${BENCH_DELAY_MS:-20}
WORDS=${BENCH_REPLY_WORDS:-100}
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(100 1000 2000)

for n in "${COUNTS[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "usage: bench/streams.sh [N ...] (N: how many streams at once)"
done

release_binaries server loadgen

most=0
for n in "${COUNTS[@]}"; do [ "$n" -le "$most" ] || most=$n; done
# The client holds a socket per stream, the server its end of each plus the database
# pool, listeners and some slack; both inherit this limit.
need=$((most + 1024))
if [ "$(ulimit -n)" -lt $need ]; then
    ulimit -n $need 2>/dev/null || die "ulimit -n $need refused (hard limit $(ulimit -Hn)); run as root or use fewer streams"
fi
# Connections per worker the server accepts (server.max_connections, 10,000 by default):
# at least every stream and the connections that read the replies back.
MAX_CONNECTIONS=$((most + 1024 > 10000 ? most + 1024 : 10000))

work_dir chatbot-streams "logs and raw results"

start_server() { # the server for N streams, in DIR
    local words=()
    [ "$WORDS" = 0 ] || words=(CHATBOT__BOT__SIMULATED_REPLY_WORDS="$WORDS")
    # Rate limits off (each user sends ten messages at once); bcrypt at its cheapest
    # cost and a deep hashing queue for the signups; warnings and errors logged only.
    start_rust $PORT "sqlite://$DIR/bench.db" CHATBOT__AUTH__BCRYPT_COST=4 \
        CHATBOT__AUTH__HASH_QUEUE_PER_THREAD=10000 \
        CHATBOT__SERVER__MAX_CONNECTIONS=$MAX_CONNECTIONS \
        CHATBOT__BOT__SIMULATED_DELAY_MS="$DELAY_MS" "${words[@]}"
}

full_report() {
    report_head "chatbot streaming benchmark" \
        ", Linux $(uname -r); the load generator (one thread) runs on the same cores" \
        crates migrations bench/loadgen
    echo "- server: $BIN${BENCH_BIN:+ (BENCH_BIN)}; client: $LOADGEN"
    echo "- each N on a fresh server and SQLite database: the simulated bot pausing" \
        "${DELAY_MS} ms between words$([ "$WORDS" = 0 ] || echo ", replies of $WORDS words")," \
        "rate limits off, bcrypt cost 4; N/10 users with 10 conversations each, one stream" \
        "per conversation, each on its own keep-alive connection opened before the" \
        "measurement; all N POSTs sent at once"
    echo "- added delay: each gap between consecutive deltas of a stream, as the client" \
        "read them, minus ${DELAY_MS} ms; first delta: from sending the POST; wall: from" \
        "sending to the last stream's end; CPU: the server's user + system time while the" \
        "streams ran; peak RSS: the server's VmHWM over its whole life (seeding included)"
    echo
    python3 "$BENCH/loadgen_report.py" streams "$RESULTS"
}

for n in "${COUNTS[@]}"; do
    NAME="the server for $n streams" DIR="$WORK/$n" out="$RESULTS/$n"
    mkdir -p "$DIR" "$out"
    log "== $n streams: starting a server"
    start_server
    "$LOADGEN" streams --url "$BASE" --n "$n" --delay-ms "$DELAY_MS" \
        --words "$WORDS" --pid "$SERVER_PID" --clk-tck "$(getconf CLK_TCK)" \
        --out "$out/streams.json" >/dev/null
    rss=$(peak_rss_kb)
    echo "rss_kb=$rss" >>"$out/facts"
    if grep -q "SIMULATED_REPLY_WORDS sets no setting" "$SERVER_LOG"; then
        log "  WARNING: this server has no bot.simulated_reply_words: replies are not $WORDS words"
    fi
    lines=$(grep -c . "$SERVER_LOG" || true)
    echo "log_lines=$lines" >>"$out/facts"
    python3 - "$out/streams.json" "$n" <<'EOF' >&2 || FAILED=true
import json, sys
r = json.load(open(sys.argv[1]))
a, f = r["added_delay_ms"], r["first_delta_ms"]
print(f"  {r['complete']}/{r['n']} complete, {r['text_matches']} deltas = done, "
      f"{r['stored_matches']} stored = done, words ok {r['word_count_ok']}; added delay "
      f"p50 {a['p50']} p99 {a['p99']} max {a['max']} ms; first delta p99 {f['p99']} ms; "
      f"wall {r['wall_s']} s")
ok = r["complete"] == r["n"] == r["text_matches"] == r["stored_matches"]
if r["word_count_ok"] is not None:
    ok = ok and r["word_count_ok"] == r["n"]
if not ok:
    print("  FAIL: not every stream completed with matching text" +
          (f" of {r['words_expected']} words" if r["words_expected"] else ""))
sys.exit(0 if ok else 1)
EOF
    stop_server
done

save_report streams.md "FAIL: some streams failed or their texts did not match (see the table)" \
    full_report
