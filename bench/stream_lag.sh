#!/usr/bin/env bash
# The lag of a reply followed on another instance (issue 14), in one command: builds the
# release binary, starts two instances on one PostgreSQL database with a simulated bot
# that pauses between words, and runs bench/stream_lag.py against them.
#
# Usage: BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/stream_lag.sh [replies]
# Environment:
#   BENCH_BIN=/path/to/chatbot   use this binary, do not build
#   BENCH_DELAY_MS=50            the simulated bot's pause between words
# The database `chatbot_lag` on that server is dropped and recreated.
set -euo pipefail
shopt -s inherit_errexit

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
: "${BENCH_DATABASE_URL:?set BENCH_DATABASE_URL to a PostgreSQL server (postgres://…)}"
BIN=${BENCH_BIN:-}
if [[ -z $BIN ]]; then
    cargo build --release --quiet --manifest-path "$REPO/Cargo.toml" --bin chatbot
    BIN="$REPO/target/release/chatbot"
fi
ADMIN_URL=$BENCH_DATABASE_URL
DB_URL="${BENCH_DATABASE_URL%/*}/chatbot_lag"
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS chatbot_lag" -c "CREATE DATABASE chatbot_lag"

# One secret, so that the session cookie of one instance is good on the other.
SECRET=$(openssl rand -hex 32)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
# One after the other: the first applies the migrations.
for port in 5096 5097; do
    DATABASE_URL=$DB_URL PORT=$port SECRET_KEY=$SECRET \
        CHATBOT__RATE_LIMIT__ENABLED=false \
        CHATBOT__BOT__SIMULATED_DELAY_MS=${BENCH_DELAY_MS:-50} \
        RUST_LOG=warn "$BIN" >/dev/null &
    pids+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/ready" >/dev/null && break; sleep 0.1; done
done
python3 "$BENCH/stream_lag.py" http://127.0.0.1:5096 http://127.0.0.1:5097 "${1:-20}"
