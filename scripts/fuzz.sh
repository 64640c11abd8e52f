#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis
# (scripts/fuzz-requirements.txt pins it), every check on: no request may get a 5xx,
# and every answer must be one the document lists, with the content type, headers and
# body schema it gives. Requests the document calls valid must be accepted, ones it
# calls invalid refused, undocumented methods answered 405 with `Allow`, and so on.
# Fails (non-zero) on any failure.
#
#   scripts/fuzz.sh            the bounded run CI makes: a fixed seed, at least 1,000
#                              generated cases per database (about 35 s each)
#   scripts/fuzz.sh --full     ten times the examples per operation, a random seed
#                              (about 8,600 cases, 3 minutes per database)
#
# Environment:
#   CHATBOT_BIN          the binary (default: cargo build --release --locked -p chatbot-server)
#   FUZZ_DATABASE_URL    also fuzz on PostgreSQL, in this database (its name must contain
#                        "fuzz": it is dropped and created afresh, and dropped again
#                        when the script ends, passed or failed), e.g.
#                        postgres://postgres@127.0.0.1:5432/chatbot_fuzz
#   FUZZ_SEED            the seed (bounded default: 20261125; --full: random, printed)
#   FUZZ_MAX_EXAMPLES    cases per operation and phase (bounded default 50, --full 500)
#
# Each database gets a fresh server: the release binary on a free loopback port, rate
# limits off (CHATBOT__RATE_LIMIT__ENABLED=false: the fuzzer sends hundreds of logins
# and messages a second) and bcrypt at its cheapest cost (CHATBOT__AUTH__BCRYPT_COST=4,
# so that fuzzing signup and login is not CPU-bound). A user `fuzzer` is signed up and
# logged in, and a few conversations with messages made, before two runs:
#
# 1. Everything but logout, with the session cookie (the document's `session` security
#    scheme) on every operation that takes it. schemathesis also sends each of those
#    without the cookie and with a wrong one (check `ignored_auth`: 401 expected), and
#    chains operations statefully (POST /api/conversations gives the ids that the
#    `{id}` operations, DELETE included, then use). Logout is left out of this run
#    because it would end the session midway, leaving the rest to be fuzzed logged out.
# 2. Logout alone, with a second session of the same user: the first call ends it, the
#    rest are logouts without a (valid) session, which answer 200 too.
# 3. Changing the password, 4. ending one session and 5. deleting the account, each as
#    a user of its own whose password is the documents' example (the example succeeds
#    once): each ends or changes the login it runs with, so run 1 leaves them out.
#    Some operations need a secret no request gives (a mailed token, another
#    session's handle, a web client asset's content hash); they are fuzzed, but need
#    not succeed (tests/api/accounts.rs and tests/api/web_client.rs make them).
#
# Then the session of run 1 must still work (else the run fuzzed logged out), every
# operation must have been answered with a 2xx at least once, the runs must have
# generated at least 1,000 cases, and the server's log must show no panic. The
# reports (NDJSON events, JUnit) stay in target/fuzz-reports/<database>/.
#
# Every check is on (`--checks all`); none is excluded. Two settings, each with its
# reason in the configuration below: 413 (a body over the server's byte limit) counts
# as a rejection for the checks that judge acceptance, and signup is fuzzed with ASCII
# strings, since JSON Schema cannot say "at most 72 bytes" (the document says it in
# words and gives the nearest bound it can, 72 characters).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
if (( full )); then
  examples="${FUZZ_MAX_EXAMPLES:-500}"
  seed="${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
  label="full"
else
  examples="${FUZZ_MAX_EXAMPLES:-50}"
  seed="${FUZZ_SEED:-20261125}"
  label="bounded"
fi
min_cases=1000
# --- databases (checked first, before any long step) ----------------------------------
pg_url="${FUZZ_DATABASE_URL:-}"
pg_name=""
if [[ -n "$pg_url" ]]; then
  pg_name="${pg_url##*/}"
  pg_name="${pg_name%%\?*}"
  if [[ "$pg_name" != *fuzz* ]]; then
    echo "FUZZ FAILED: FUZZ_DATABASE_URL names the database '$pg_name', which this script would drop: use a name containing 'fuzz'" >&2
    exit 1
  fi
  command -v psql >/dev/null || { echo "FUZZ FAILED: psql is not installed (apt-get install -y postgresql-client)" >&2; exit 1; }
fi

fail() {
  echo "FUZZ FAILED: $*" >&2
  exit 1
}

# --- schemathesis, in a virtualenv of its own ----------------------------------------
venv="$root/target/fuzz-venv"
requirements="$root/scripts/fuzz-requirements.txt"
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null || [[ ! -x "$venv/bin/schemathesis" ]]; then
  echo "fuzz: installing $(grep -m1 '^schemathesis' "$requirements") into $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    echo "fuzz: python3 cannot make a virtualenv; installing Debian's python3-venv" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }; then
      fail "cannot install python3-venv"
    fi
    python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
    || fail "pip install -r $requirements failed"
  cp "$requirements" "$venv/requirements.txt"
fi
st="$venv/bin/schemathesis"
py="$venv/bin/python"
helper="$root/scripts/fuzz.py"

# --- the binary --------------------------------------------------------------------
if [[ -n "${CHATBOT_BIN:-}" ]]; then
  bin="$CHATBOT_BIN"
else
  echo "fuzz: CHATBOT_BIN is unset; building the release binary"
  cargo build --release --locked -p chatbot-server
  bin=target/release/chatbot
fi
[[ "$bin" == /* ]] || bin="$root/$bin"
[[ -x "$bin" ]] || fail "no executable at $bin (set CHATBOT_BIN, or unset it to build one)"

# --- servers -------------------------------------------------------------------------
work="$(mktemp -d)"
server_pid=""
pg_created=""
# shellcheck source=scripts/server-process.sh
source "$root/scripts/server-process.sh"
drop_pg_database() {
  PGOPTIONS="--client-min-messages=warning" psql -q "${pg_url%/*}/postgres" \
    -c "DROP DATABASE IF EXISTS \"$pg_name\" WITH (FORCE)" >/dev/null
}
cleanup() {
  local status=$?
  stop_server
  if [[ -n "$pg_created" ]]; then
    drop_pg_database || echo "fuzz: could not drop the database $pg_name" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fuzz_database NAME DATABASE_URL: one server on that database, both runs, the checks.
fuzz_database() {
  local name="$1" database_url="$2"
  local dir="$work/$name" reports="$root/target/fuzz-reports/$name"
  local port base log started status=0
  mkdir -p "$dir/app"
  cp -R config "$dir/app/config"
  rm -rf "$reports"
  mkdir -p "$reports"
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  log="$reports/server.log"

  echo
  echo "=== fuzz ($label, $name): $examples examples per operation, seed $seed, $base"
  (cd "$dir/app" && exec env -i PATH="$PATH" HOME="$dir" \
    DATABASE_URL="$database_url" HOST=127.0.0.1 PORT="$port" \
    SECRET_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
    CHATBOT__RATE_LIMIT__ENABLED=false CHATBOT__AUTH__BCRYPT_COST=4 \
    RUST_LOG=warn "$bin" serve) >"$log" 2>&1 &
  server_pid=$!
  "$py" "$helper" wait "$base" 60 || { cat "$log" >&2; fail "the server on $name did not start"; }

  local cookie logout_cookie password_cookie sessions_cookie delete_cookie
  cookie="$("$py" "$helper" fixtures "$base" fuzzer)"
  logout_cookie="$("$py" "$helper" login "$base" fuzzer)"
  password_cookie="$("$py" "$helper" account "$base" fuzz-password)"
  sessions_cookie="$("$py" "$helper" account "$base" fuzz-sessions)"
  delete_cookie="$("$py" "$helper" account "$base" fuzz-delete)"

  # What both runs read besides the command line; `${FUZZ_SESSION}` is each one's cookie.
  cat >"$dir/schemathesis.toml" <<'EOF'
[auth.openapi.session]
api_key = "${FUZZ_SESSION}"

# A request body over the server's limit (64 KiB) is refused with 413
# `payload_too_large`, as every operation with a body documents, before it is read.
# JSON Schema cannot bound the bytes of an encoded body: a string over a length rule
# can make one (the fuzzer's first run found that), and so can one within it (16,000
# characters of text, each escaped to 12 bytes). 413 is a rejection: the two checks
# below are told so; everything else they expect is schemathesis' default.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]

# Signup checks that a password has at most 72 bytes of UTF-8, which JSON Schema
# cannot say: the document gives maxLength 72 (characters) and says "bytes" in words.
# Generated as ASCII, where characters and bytes agree, signup's cases are all ones
# the document decides rightly; the other operations get all of Unicode.
[[operations]]
include-path = "/api/signup"
generation.codec = "ascii"

# A well-formed token, current password or password is still refused (400) unless it
# is the right one: the document says so, and no schema can tell the fuzzer which.
[[operations]]
include-name = "POST /api/email/verify"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "429", "5xx"]
[[operations]]
include-name = "POST /api/password/reset"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "429", "5xx"]
[[operations]]
include-name = "POST /api/me/password"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "429", "5xx"]
[[operations]]
include-name = "DELETE /api/me"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "429", "5xx"]
EOF

  # shellcheck disable=SC2054 # `ndjson,junit` is one argument, a list of formats
  local common=(
    run "$base/api/openapi.json"
    --checks all
    --max-examples "$examples"
    --seed "$seed"
    --generation-database none
    --no-color
    --report ndjson,junit
  )
  started=$SECONDS
  # GET /api/ws is left out too: its success is a WebSocket upgrade, which an HTTP
  # fuzzer cannot make (tests/api/realtime.rs drives it with a WebSocket client).
  # The operations that end or change the session's own login go to runs of their own,
  # each as a user of its own, as logout does.
  (cd "$dir" && FUZZ_SESSION="$cookie" "$st" --config-file "$dir/schemathesis.toml" "${common[@]}" \
    --exclude-path /api/logout --exclude-path /api/ws \
    --exclude-name "POST /api/me/password" --exclude-name "DELETE /api/me" \
    --exclude-name "DELETE /api/me/sessions/{id}" \
    --report-dir "$reports/logged-in") || status=$?
  (cd "$dir" && FUZZ_SESSION="$logout_cookie" "$st" --config-file "$dir/schemathesis.toml" "${common[@]}" \
    --include-path /api/logout \
    --report-dir "$reports/logout") || status=$?
  (cd "$dir" && FUZZ_SESSION="$password_cookie" "$st" --config-file "$dir/schemathesis.toml" "${common[@]}" \
    --include-name "POST /api/me/password" \
    --report-dir "$reports/password") || status=$?
  (cd "$dir" && FUZZ_SESSION="$sessions_cookie" "$st" --config-file "$dir/schemathesis.toml" "${common[@]}" \
    --include-name "DELETE /api/me/sessions/{id}" \
    --report-dir "$reports/sessions") || status=$?
  (cd "$dir" && FUZZ_SESSION="$delete_cookie" "$st" --config-file "$dir/schemathesis.toml" "${common[@]}" \
    --include-name "DELETE /api/me" \
    --report-dir "$reports/delete") || status=$?
  local elapsed=$(( SECONDS - started ))

  echo
  echo "=== fuzz ($label, $name): results"
  "$py" "$helper" session "$base" "$cookie" || status=1
  "$py" "$helper" report "$min_cases" "$reports"/{logged-in,logout,password,sessions,delete}/ndjson-*.ndjson \
    || status=1
  echo "fuzz: $name took ${elapsed} s (all runs, wall clock)"
  if grep -n "panicked" "$log" >&2; then
    echo "FUZZ FAILED: the server panicked on $name (above; the log is $log)" >&2
    status=1
  fi
  kill -0 "$server_pid" 2>/dev/null || { echo "FUZZ FAILED: the server on $name died" >&2; status=1; }
  stop_server
  (( status == 0 )) || fail "on $name (schemathesis' failures are above; reports in $reports)"
  echo "fuzz: $name passed"
}

fuzz_database sqlite "sqlite://$work/fuzz.db"

if [[ -n "$pg_url" ]]; then
  pg_created=1
  PGOPTIONS="--client-min-messages=warning" psql -q -v ON_ERROR_STOP=1 "${pg_url%/*}/postgres" \
    -c "DROP DATABASE IF EXISTS \"$pg_name\" WITH (FORCE)" \
    -c "CREATE DATABASE \"$pg_name\"" \
    || fail "cannot recreate the database $pg_name at ${pg_url%/*}"
  fuzz_database postgresql "$pg_url"
fi

echo
echo "fuzz: every run passed ($label, seed $seed)"
