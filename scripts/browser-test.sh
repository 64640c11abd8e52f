#!/usr/bin/env bash
# The web client's end-to-end tests (tests/browser/): Node's test runner drives
# Debian's Chromium, headless, through playwright-core, against the release binary.
# Each test asserts what a user sees and, where it matters, that the API has stored the
# same: signing up and a streamed reply, Stop, a reload mid-reply, renaming and
# deleting, a second tab kept in sync over the WebSocket, Markdown that cannot run
# script, logging out, a password reset through the mailed link, the keyboard, axe-core
# (light and dark, 360 and 1280 px: a serious or critical violation fails), and the
# screenshots in docs/screenshots/, which every run writes afresh.
# Fails (non-zero) on any failure.
#
#   scripts/browser-test.sh               every test (about 60 s on two cores)
#   scripts/browser-test.sh FILE...       some of tests/browser/*.test.js, e.g. chat.test.js
#
# Environment:
#   CHATBOT_BIN     the binary (default target/release/chatbot: cargo build --release first)
#   CHROMIUM_BIN    the browser (default /usr/bin/chromium; when that is missing, the
#                   script installs Debian's chromium with apt-get, which needs root)
#
# It needs Node.js 20 or later with npm. `npm ci` installs playwright-core and axe-core,
# pinned in tests/browser/package-lock.json, into tests/browser/node_modules (again only
# when the lock changes). The server runs on a free loopback port, on a fresh SQLite
# database in a temporary folder, with rate limits off (the tests sign up and log in
# many times a second), bcrypt at its cheapest cost, the simulated bot pausing 40 ms
# between words (a reply streams for one or two seconds) and mail written as files in
# the temporary folder (the tests read the reset link there). Its log is kept in
# target/browser-test/server.log, printed when a test fails and checked for panics, the
# tests' report in target/browser-test/tests.log; a failed test leaves screenshots of
# its pages in target/browser-test/. The last line counts the tests that passed and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

fail() {
  echo "BROWSER TESTS FAILED: $*" >&2
  exit 1
}

files=()
for arg in "$@"; do
  case "$arg" in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "browser-test: unknown option $arg (try --help)" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done

# --- Node.js, Chromium, the test project's packages ------------------------------------
command -v node >/dev/null && command -v npm >/dev/null \
  || fail "Node.js 20 or later and npm are needed (https://nodejs.org, or Debian's nodejs and npm)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 20 )) || fail "Node.js $(node --version) is too old: 20 or later is needed"

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  [[ -z "${CHROMIUM_BIN:-}" ]] || fail "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"
  echo "browser-test: $chromium is missing; installing Debian's chromium with apt-get (needs root)" >&2
  [[ $(id -u) -eq 0 ]] || fail "not root: install Chromium yourself (apt-get install chromium), or set CHROMIUM_BIN"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || fail "cannot install chromium with apt-get"
  [[ -x "$chromium" ]] || fail "Debian's chromium did not install $chromium"
fi

tests="$root/tests/browser"
installed="$tests/node_modules/.package-lock.installed.json"
if ! cmp -s "$tests/package-lock.json" "$installed"; then
  echo "browser-test: npm ci in tests/browser"
  (cd "$tests" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/browser failed"
  cp "$tests/package-lock.json" "$installed"
fi

# --- the binary --------------------------------------------------------------------
bin="${CHATBOT_BIN:-target/release/chatbot}"
[[ "$bin" == /* ]] || bin="$root/$bin"
[[ -x "$bin" ]] || fail "no executable at $bin (cargo build --release -p chatbot-server, or set CHATBOT_BIN)"

# --- the server ----------------------------------------------------------------------
work="$(mktemp -d)"
artifacts="$root/target/browser-test"
rm -rf "$artifacts"
mkdir -p "$artifacts" "$work/app" "$work/mail"
log="$artifacts/server.log"
server_pid=""
# shellcheck source=scripts/server-process.sh
source "$root/scripts/server-process.sh"
cleanup() {
  local status=$?
  stop_server
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# The server runs in an empty folder: with no config/ there it uses the settings built
# into the binary. app.public_url stays at its default, so the page's own origin
# (http://127.0.0.1:<port>) may change data; set in a file, it would be the only one.
port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
base="http://127.0.0.1:$port"
(cd "$work/app" && exec env -i PATH="$PATH" HOME="$work" \
  DATABASE_URL="sqlite://$work/browser.db" HOST=127.0.0.1 PORT="$port" \
  SECRET_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
  CHATBOT__RATE_LIMIT__ENABLED=false CHATBOT__AUTH__BCRYPT_COST=4 \
  CHATBOT__BOT__SIMULATED_DELAY_MS=40 CHATBOT__MAIL__FILE_DIR="$work/mail" \
  RUST_LOG=info "$bin" serve) >"$log" 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 300); do
  kill -0 "$server_pid" 2>/dev/null || break
  if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$base/api/ready"; then
    ready=1
    break
  fi
  sleep 0.1
done
if (( ! ready )); then
  cat "$log" >&2
  fail "the server did not get ready at $base (its log is above)"
fi

# --- the tests -----------------------------------------------------------------------
echo "=== browser tests: $chromium ($("$chromium" --version 2>/dev/null || echo "version unknown")), server $base"
status=0
started=$SECONDS
# Files one at a time (each test has its own timeout, the whole run five minutes): the
# tests time what streams, which two busy browsers on two cores would blur.
(cd "$tests" && BASE_URL="$base" MAIL_DIR="$work/mail" CHROMIUM_BIN="$chromium" \
  SCREENSHOT_DIR="$root/docs/screenshots" ARTIFACT_DIR="$artifacts" \
  timeout --kill-after=10 300 node --test --test-reporter=spec --test-concurrency=1 \
  --test-timeout=60000 "${files[@]}") 2>&1 | tee "$artifacts/tests.log" || status=$?
echo "browser-test: the tests took $(( SECONDS - started )) s"
(( status != 124 )) || echo "BROWSER TESTS FAILED: the run took more than 300 s and was stopped" >&2
passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$artifacts/tests.log" | tail -n 1)"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$artifacts/tests.log" | tail -n 1)"
if [[ -z "$passed" ]] || (( passed + failed == 0 )); then
  echo "BROWSER TESTS FAILED: no test ran" >&2
  status=1
fi

if grep -n "panicked" "$log" >&2; then
  echo "BROWSER TESTS FAILED: the server panicked (above; the log is $log)" >&2
  status=1
fi
kill -0 "$server_pid" 2>/dev/null || { echo "BROWSER TESTS FAILED: the server died" >&2; status=1; }
stop_server
if (( status != 0 )); then
  echo "--- the server's log ($log)" >&2
  cat "$log" >&2
  echo "browser-test: ${passed:-0} passed, ${failed:-0} failed" >&2
  fail "see the failures above (screenshots of failed tests' pages are in $artifacts)"
fi
echo "browser-test: screenshots in docs/screenshots/, the server's log in $log"
echo "browser-test: $passed passed, $failed failed"
