#!/usr/bin/env bash
# The tests: `cargo test --workspace` (arguments are passed on to it), then one line
# saying whether the PostgreSQL tests ran. They run when TEST_DATABASE_URL names a
# server (each test makes a schema of its own there and drops it); without it the
# crates' build scripts mark them `ignored` with the reason, and the last line says
# how many were skipped and how to run them. With CI set, skipping them fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace "$@"
status=$?

if [[ -n ${TEST_DATABASE_URL:-} ]]; then
  echo "the PostgreSQL tests ran on the server of TEST_DATABASE_URL"
else
  # The ignored tests of every binary, listed (nothing is built anew); PostgreSQL
  # tests have `postgres` in their names.
  skipped=$(cargo test --workspace -q -- --list --ignored 2>/dev/null | grep -c 'postgres.*: test$')
  echo "$skipped PostgreSQL tests SKIPPED: TEST_DATABASE_URL is not set; run them with" \
    "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/test.sh"
  if [[ -n ${CI:-} ]]; then
    echo "FATAL: CI runs every PostgreSQL test" >&2
    status=1
  fi
fi
exit "$status"
