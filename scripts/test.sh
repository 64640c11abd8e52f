#!/usr/bin/env bash
# The tests: `cargo test --workspace` (arguments are passed on to it), then one line
# saying whether the PostgreSQL tests ran. They run when TEST_DATABASE_URL names a
# server (each test makes a schema of its own there and drops it); without it they
# are reported `ignored`, and the last line says how many and how to run them. With
# CI set, a skipped PostgreSQL test fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
[[ -t 1 ]] && export CARGO_TERM_COLOR=always
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

skipped=$(grep -c 'ignored, PostgreSQL: set TEST_DATABASE_URL' "$log")
if ((skipped > 0)); then
  echo "$skipped PostgreSQL tests SKIPPED: TEST_DATABASE_URL is not set; run them with" \
    "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/test.sh"
  if [[ -n ${CI:-} ]]; then
    echo "FATAL: CI runs every PostgreSQL test" >&2
    status=1
  fi
elif [[ -n ${TEST_DATABASE_URL:-} ]]; then
  echo "the PostgreSQL tests ran on the server of TEST_DATABASE_URL"
fi
exit "$status"
