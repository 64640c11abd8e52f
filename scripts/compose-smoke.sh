#!/usr/bin/env bash
# `docker compose up`, without a Docker engine: runs the release binary the way
# docker-compose.yml and the Dockerfile run it, against PostgreSQL, and puts it through
# a smoke test of the public API (scripts/smoke.py), the container's health probe
# (docker/healthcheck.sh) and a SIGTERM, which must end it with exit code 0.
#
#   scripts/compose-smoke.sh
#
# The process gets exactly the environment the app container gets: the Dockerfile's
# ENV, then the app service's `environment:` as compose resolves it
# (`docker-compose config`; scripts/compose_tool.py resolves it itself when no compose
# tool is installed), with SECRET_KEY and POSTGRES_PASSWORD supplied as .env would
# supply them, and nothing else from this shell. It runs in a directory laid out like
# the image's /app (config/ beside it). Three values differ, and say so: PORT, a free
# port instead of the container's 5000; HOST, the loopback instead of 0.0.0.0 (in a
# container that is the container's own network; here it would be the machine's); and
# DATABASE_URL, which docker-compose.yml builds from POSTGRES_PASSWORD for the host `db`
# of the compose network (checked first), replaced by the local database.
#
# Environment:
#   CHATBOT_BIN          the binary (default: cargo build --release --locked -p chatbot-server)
#   SMOKE_DATABASE_URL   a PostgreSQL database to use as is (default: the database
#                        chatbot_smoke on postgres://postgres@127.0.0.1:5432, created
#                        afresh and dropped when the script ends, failed or not)
#   SECRET_KEY           the signing key (default: openssl rand -hex 32)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

work="$(mktemp -d)"
log="$work/server.log"
server_pid=""
finished=0
# The database this script creates, dropped on exit (none when SMOKE_DATABASE_URL is set).
admin="postgres://postgres@127.0.0.1:5432"
fresh_database=""

fail() {
  echo "SMOKE FAILED: $*" >&2
  exit 1
}

cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ $finished -ne 1 && -s "$log" ]]; then
    echo "----- the server's log ($log) -----" >&2
    cat "$log" >&2
    echo "----- end of the server's log -----" >&2
  fi
  if [[ -n "$fresh_database" ]]; then
    PGOPTIONS="--client-min-messages=warning" psql -q "$admin/postgres" \
      -c "DROP DATABASE IF EXISTS $fresh_database WITH (FORCE)" >/dev/null \
      || echo "compose-smoke: could not drop the database $fresh_database" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# --- the binary --------------------------------------------------------------------
if [[ -n "${CHATBOT_BIN:-}" ]]; then
  bin="$CHATBOT_BIN"
else
  echo "compose-smoke: CHATBOT_BIN is unset; building the release binary"
  cargo build --release --locked -p chatbot-server
  bin=target/release/chatbot
fi
[[ "$bin" == /* ]] || bin="$root/$bin"
[[ -x "$bin" ]] || fail "no executable at $bin (set CHATBOT_BIN, or unset it to build one)"

# --- tools -------------------------------------------------------------------------
python=""
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import yaml' >/dev/null 2>&1; then python="$candidate"; break; fi
done
[[ -n "$python" ]] || fail "no python3 with PyYAML to read docker-compose.yml (apt-get install -y python3-yaml)"
for tool in openssl psql pg_isready; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install -y openssl postgresql-client)"
done

# --- the database --------------------------------------------------------------------
if [[ -n "${SMOKE_DATABASE_URL:-}" ]]; then
  database_url="$SMOKE_DATABASE_URL"
else
  pg_isready -q -d "$admin/postgres" \
    || fail "PostgreSQL is not answering at $admin (bash .ci/run starts the local cluster), or set SMOKE_DATABASE_URL"
  fresh_database=chatbot_smoke
  PGOPTIONS="--client-min-messages=warning" psql -q -v ON_ERROR_STOP=1 "$admin/postgres" \
    -c "DROP DATABASE IF EXISTS $fresh_database WITH (FORCE)" \
    -c "CREATE DATABASE $fresh_database" \
    || fail "cannot recreate the database $fresh_database on $admin"
  database_url="$admin/$fresh_database"
fi
psql -q "$database_url" -tAc 'SELECT 1' >/dev/null || fail "cannot connect to $database_url"

# --- the container's environment -------------------------------------------------------
secret_key="${SECRET_KEY:-$(openssl rand -hex 32)}"
(( ${#secret_key} >= 32 )) || fail "SECRET_KEY must be at least 32 bytes"

# What .env supplies to compose: the signing key and the db service's password, from
# which docker-compose.yml builds the app's DATABASE_URL (hex, as .env.example advises).
postgres_password="$(openssl rand -hex 16)"
compose_url="postgres://chatbot:$postgres_password@db:5432/chatbot"
compose_inputs=(
  "SECRET_KEY=$secret_key"
  "POSTGRES_PASSWORD=$postgres_password"
)
: >"$work/empty.env"
if command -v docker-compose >/dev/null 2>&1; then
  resolver="docker-compose config"
  env -i PATH="$PATH" "${compose_inputs[@]}" \
    docker-compose --env-file "$work/empty.env" -f docker-compose.yml config >"$work/resolved.yml" \
    || fail "docker-compose config rejects docker-compose.yml (scripts/compose-check.sh says more)"
elif docker compose version >/dev/null 2>&1; then
  resolver="docker compose config"
  env -i PATH="$PATH" HOME="$HOME" "${compose_inputs[@]}" \
    docker compose --env-file "$work/empty.env" -f docker-compose.yml config >"$work/resolved.yml" \
    || fail "docker compose config rejects docker-compose.yml (scripts/compose-check.sh says more)"
else
  resolver="scripts/compose_tool.py resolve (no compose tool installed)"
  env -i PATH="$PATH" "${compose_inputs[@]}" \
    "$python" scripts/compose_tool.py resolve docker-compose.yml >"$work/resolved.yml" \
    || fail "cannot resolve docker-compose.yml"
fi
"$python" scripts/compose_tool.py env "$work/resolved.yml" >"$work/container.env" \
  || fail "cannot read the app's environment from docker-compose.yml and the Dockerfile"
mapfile -d '' container_env <"$work/container.env"
(( ${#container_env[@]} > 0 )) || fail "docker-compose.yml gives the app no environment"

declare -A from_compose=()
for pair in "${container_env[@]}"; do from_compose["${pair%%=*}"]="${pair#*=}"; done

# The compose file must set what this test relies on, to the values it expects.
expect_var() {
  local name="$1" value="$2"
  [[ "${from_compose[$name]+set}" == set ]] \
    || fail "docker-compose.yml / the Dockerfile do not set $name for the app"
  [[ "${from_compose[$name]}" == "$value" ]] \
    || fail "the app's $name is '${from_compose[$name]}' in docker-compose.yml / the Dockerfile, expected '$value'"
}
expect_var APP_ENV production
expect_var HOST 0.0.0.0
expect_var PORT 5000
expect_var SECRET_KEY "$secret_key"
expect_var DATABASE_URL "$compose_url"
[[ "${from_compose[CHATBOT__SESSION__COOKIE_SECURE]:-}" == true ]] \
  || fail "docker-compose.yml should keep CHATBOT__SESSION__COOKIE_SECURE=true by default"

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
run_env=(PATH=/usr/local/bin:/usr/bin:/bin HOME="$work/app" "${container_env[@]}" HOST=127.0.0.1 PORT="$port"
  DATABASE_URL="$database_url")

# The image's /app: the binary's working directory, with config/ in it.
mkdir -p "$work/app/data"
cp -R config "$work/app/config"

# The image's USER: run as an unprivileged user too, when this shell is root and can
# switch (nobody stands in for the image's chatbot user). /app is not writable by it,
# as in the image, where only /app/data is.
as_user=()
user_note="as $(id -un) (uid $(id -u))"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  uid="$(id -u nobody)"
  gid="$(id -g nobody)"
  chmod 755 "$work"
  chown "$uid:$gid" "$work/app/data"
  candidate=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
  if "${candidate[@]}" test -x "$bin" -a -r "$work/app/config/default.toml"; then
    as_user=("${candidate[@]}")
    user_note="as nobody (uid $uid), not root, like the image's USER"
  else
    user_note="as root: nobody cannot execute $bin"
  fi
fi

echo "compose-smoke: $bin"
echo "  environment from the Dockerfile and docker-compose.yml ($resolver):"
for pair in "${container_env[@]}"; do
  case "${pair%%=*}" in
    SECRET_KEY) echo "    SECRET_KEY=[${#secret_key} bytes]" ;;
    DATABASE_URL) echo "    DATABASE_URL=${compose_url/$postgres_password/***} (built from POSTGRES_PASSWORD)" ;;
    *) echo "    $pair" ;;
  esac
done
echo "  changed for this machine: HOST=127.0.0.1 PORT=$port (the container: 0.0.0.0:5000),"
echo "    DATABASE_URL=$database_url (the container: the db service's, above)"
echo "  working directory: $work/app (the image's /app, with config/); running $user_note"

# --- serve -----------------------------------------------------------------------
(cd "$work/app" && exec "${as_user[@]}" env -i "${run_env[@]}" "$bin" serve) >"$log" 2>&1 &
server_pid=$!

smoke_flags=(--base "http://127.0.0.1:$port" --pid "$server_pid" --wait 60 --expect-secure-cookie)
if grep -rqi 'x-request-id' crates/; then
  echo "  crates/ set X-Request-Id: every response must carry one"
  smoke_flags+=(--expect-request-id)
fi
"$python" scripts/smoke.py "${smoke_flags[@]}" || fail "the API smoke test failed (above)"

# The container's HEALTHCHECK, run the way Docker runs it, in the app's environment.
for path in /api/health /api/ready; do
  "${as_user[@]}" env -i "${run_env[@]}" bash docker/healthcheck.sh "$path" \
    || fail "docker/healthcheck.sh $path fails against the running server"
done

# What the smoke test sent must not be in the log.
if grep -qF "$secret_key" "$log"; then fail "the server logged SECRET_KEY"; fi
if grep -qF "correct horse battery" "$log"; then fail "the server logged a password"; fi

# --- SIGTERM: exit 0, promptly --------------------------------------------------------
echo "  SIGTERM"
started=$(date +%s.%N)
kill -TERM "$server_pid"
state=""
for _ in $(seq 100); do
  # Exited (a zombie until waited for) or gone.
  state="$(ps -o stat= -p "$server_pid" 2>/dev/null || true)"
  [[ -z "$state" || "$state" == Z* ]] && break
  sleep 0.1
done
if [[ -n "$state" && "$state" != Z* ]]; then
  fail "the server is still running 10 s after SIGTERM"
fi
status=0
wait "$server_pid" || status=$?
elapsed=$("$python" -c "import time; print(f'{time.time() - $started:.2f}')")
server_pid=""
[[ $status -eq 0 ]] || fail "after SIGTERM the server exited with status $status, expected 0"
echo "  exited 0, ${elapsed} s after SIGTERM"

if env -i "${run_env[@]}" bash docker/healthcheck.sh /api/health >/dev/null 2>&1; then
  fail "docker/healthcheck.sh still reports healthy with the server stopped"
fi

# The migrations the server applied at start-up, seen by the binary's own command.
if ! (cd "$work/app" && env -i "${run_env[@]}" "$bin" migrations) >"$work/migrations" 2>&1; then
  cat "$work/migrations" >&2
  fail "\`chatbot migrations\` fails"
fi
if grep -q '^pending' "$work/migrations" || ! grep -q '^applied' "$work/migrations"; then
  cat "$work/migrations" >&2
  fail "the server did not apply every migration at start-up"
fi
echo "  migrations: $(grep -c '^applied' "$work/migrations") applied, none pending"

finished=1
echo "compose-smoke: passed"
