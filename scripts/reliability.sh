#!/usr/bin/env bash
# The reliability suite (crates/server/tests/reliability.rs): the real `chatbot`
# binary under 200 concurrent writers, killed with SIGKILL in the middle of a write
# load and restarted, and on a SQLite database that stops taking writes. Each
# scenario runs on SQLite and, when TEST_DATABASE_URL names a PostgreSQL server, on
# PostgreSQL too; the figures of every scenario are collected in one Markdown table.
# Then, only when asked for with RELIABILITY_STOP_POSTGRES=1 (.ci/run sets it),
# PostgreSQL going down under load (crates/server/tests/outage.rs), alone: it STOPS
# THIS MACHINE'S POSTGRESQL CLUSTER (pg_ctlcluster, as root) and starts it again, which
# cuts every other client of it. Without the variable that scenario is SKIPPED, and
# says so.
#
#   scripts/reliability.sh           bounded (CI): 5 s of load per scenario
#   scripts/reliability.sh --full    the issue's figures: 20 s of load per scenario
#
# Environment:
#   TEST_DATABASE_URL     PostgreSQL server for the PostgreSQL half, e.g.
#                         postgres://postgres@127.0.0.1:5432/test (skipped, and said so,
#                         when unset)
#   RELIABILITY_SECONDS   seconds of load per scenario (5; 20 with --full)
#   RELIABILITY_CLIENTS   concurrent clients (200)
#   RELIABILITY_KILLS     SIGKILLs in the crash scenario, spread over its load (3)
#   RELIABILITY_REPORT    where the table goes (target/reliability/<bounded|full>.md)
#   RELIABILITY_STOP_POSTGRES=1   also run the outage scenario, which stops and restarts
#                         the local PostgreSQL cluster (needs TEST_DATABASE_URL on it)
#
# Needs prlimit and setpriv (util-linux) for the read-only scenarios; run as root,
# the read-only-file scenario runs the server as `nobody`, since root ignores file
# modes.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=bounded
case "${1:-}" in
  "" | --bounded) ;;
  --full) mode=full ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: scripts/reliability.sh [--full]" >&2
    exit 2
    ;;
esac
if [[ $mode == full ]]; then
  export RELIABILITY_SECONDS="${RELIABILITY_SECONDS:-20}"
else
  export RELIABILITY_SECONDS="${RELIABILITY_SECONDS:-5}"
fi
export RELIABILITY_CLIENTS="${RELIABILITY_CLIENTS:-200}"
export RELIABILITY_KILLS="${RELIABILITY_KILLS:-3}"

for tool in prlimit setpriv; do
  command -v "$tool" >/dev/null || { echo "reliability: $tool is missing (apt-get install -y util-linux)" >&2; exit 1; }
done
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
  echo "reliability: TEST_DATABASE_URL is not set: the PostgreSQL half is SKIPPED" >&2
fi

report="${RELIABILITY_REPORT:-target/reliability/$mode.md}"
mkdir -p "$(dirname "$report")"
report="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
{
  echo "| scenario | database | load | figures | result |"
  echo "| --- | --- | --- | --- | --- |"
} >"$report"
export RELIABILITY_REPORT="$report"

echo "reliability ($mode): ${RELIABILITY_CLIENTS} clients, ${RELIABILITY_SECONDS} s of load per scenario, ${RELIABILITY_KILLS} kills"
started=$(date +%s)
# One scenario at a time: each one loads the whole machine.
# Without a server, the PostgreSQL scenarios (named `…::postgres`) are left out.
only_sqlite=()
[[ -n "${TEST_DATABASE_URL:-}" ]] || only_sqlite=(--skip postgres)
cargo test --locked -p chatbot-server --test reliability -- --ignored --test-threads=1 "${only_sqlite[@]}"
# PostgreSQL going down under load (tests/outage.rs) stops the machine's cluster, so
# it runs only when asked for, last and alone.
outage_note=""
if [[ -f crates/server/tests/outage.rs ]]; then
  outage_note=" (the PostgreSQL outage scenario SKIPPED: see above)"
  if [[ "${RELIABILITY_STOP_POSTGRES:-}" != 1 ]]; then
    echo "reliability: SKIPPED the PostgreSQL outage scenario (tests/outage.rs): it stops and restarts" >&2
    echo "             this machine's PostgreSQL cluster; set RELIABILITY_STOP_POSTGRES=1 to run it" >&2
  elif [[ -z "${TEST_DATABASE_URL:-}" ]]; then
    echo "reliability: TEST_DATABASE_URL is not set: the PostgreSQL outage scenario is SKIPPED" >&2
  else
    echo "reliability: RELIABILITY_STOP_POSTGRES=1: the outage scenario stops this machine's PostgreSQL cluster and starts it again"
    cargo test --locked -p chatbot-server --test outage -- --ignored --test-threads=1
    outage_note=""
  fi
fi
echo
echo "reliability ($mode) passed in $(($(date +%s) - started)) s${outage_note}; figures in $report:"
cat "$report"
