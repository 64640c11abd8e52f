#!/usr/bin/env bash
# The tests: `cargo test --workspace` (arguments are passed on to it), then a line
# saying whether the SMTP tests ran and one saying whether the PostgreSQL tests ran. They run when TEST_DATABASE_URL names a
# server (each test makes a schema of its own there and drops it); without it the
# crates' build scripts mark them `ignored` with the reason, and the last line says
# how many were skipped and how to run them. With CI set, skipping them fails the run.
# First it makes target/smtp-venv (aiosmtpd, for the mail tests) when it is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

# The mail tests (crates/mail) deliver to a real SMTP server, aiosmtpd (Python, from
# PyPI), run from a virtualenv of its own, target/smtp-venv, made here when it is
# missing; SMTP_SINK_PYTHON tells the tests where it is (set it to use another
# python). Without it they print SKIPPED, or fail with CI set.
smtp_sink=ready
if [[ -z ${SMTP_SINK_PYTHON:-} ]]; then
  smtp_venv="$PWD/target/smtp-venv"
  if ! "$smtp_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "test: installing aiosmtpd into $smtp_venv for the mail tests"
    python3 -m venv "$smtp_venv" &&
      "$smtp_venv/bin/pip" install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
  fi
  export SMTP_SINK_PYTHON="$smtp_venv/bin/python"
fi
if ! "$SMTP_SINK_PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
  smtp_sink=missing
  echo "WARNING: no aiosmtpd at $SMTP_SINK_PYTHON: the SMTP tests of crates/mail will be" \
    "SKIPPED (with CI set they FAIL). Install it: python3 -m venv target/smtp-venv &&" \
    "target/smtp-venv/bin/pip install aiosmtpd (Debian: apt-get install -y python3-venv first)" >&2
fi

cargo test --workspace "$@"
status=$?

if [[ $smtp_sink == ready ]]; then
  echo "the SMTP tests ran on aiosmtpd ($SMTP_SINK_PYTHON)"
else
  echo "the SMTP tests could not run (no aiosmtpd at $SMTP_SINK_PYTHON, see the WARNING" \
    "above): SKIPPED, or FAILED with CI set"
fi

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
