#!/usr/bin/env bash
# Checks docker-compose.yml, the Dockerfile and .env.example without a Docker engine:
#
#   1. compose parses and validates the file (`config -q`) with the required variables
#      set, and refuses it, naming the variable, when one of them is missing;
#   2. .env.example plus a SECRET_KEY is a working configuration, and carries no
#      DATABASE_URL: the compose file builds the app's from POSTGRES_PASSWORD, and a
#      DATABASE_URL in .env or the environment does not change it;
#   3. the resolved file and the Dockerfile hold what the service needs
#      (scripts/compose_tool.py check: production profile, db healthcheck,
#      service_healthy, the database URL built from POSTGRES_PASSWORD, non-root user,
#      HEALTHCHECK, the dependency layer, no OpenSSL in the runtime stage, ...).
#
# Needs docker-compose (Debian's package, the Python v1: apt-get install -y
# docker-compose) or the Docker CLI's compose plugin (`docker compose`); neither
# needs a running engine for `config`.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  cat >&2 <<'EOF'
FATAL: neither docker-compose nor `docker compose` is installed, so docker-compose.yml
cannot be validated. Install one, e.g. Debian's package (no Docker engine needed):
    apt-get update && apt-get install -y docker-compose
EOF
  exit 1
fi

# The python3 that can read YAML: docker-compose's Debian package brings python3-yaml
# for the system python3, which may not be the first python3 on PATH.
python=""
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import yaml' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "FATAL: no python3 with PyYAML (apt-get install -y python3-yaml)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
: >"$work/empty.env"

# The variables the file interpolates, and DATABASE_URL, which it must not; the
# caller's own values (or a .env in the repository) must not leak into the check.
variables=(SECRET_KEY POSTGRES_PASSWORD DATABASE_URL COOKIE_SECURE CORS_ALLOWED_ORIGINS APP_PORT RUST_LOG)
unset_all=()
for name in "${variables[@]}"; do unset_all+=(-u "$name"); done

# The sample values scripts/compose_tool.py expects back.
sample=(
  SECRET_KEY=compose-check-secret-compose-check-secret-0123456789
  POSTGRES_PASSWORD=compose-check-password
)
# The app's database URL that docker-compose.yml must build from that password.
expected_url=postgres://chatbot:compose-check-password@db:5432/chatbot

# `run_compose ENV_FILE [NAME=value...] [-- config options]`: compose's config of
# docker-compose.yml with only the given variables set.
run_compose() {
  local env_file="$1"
  shift
  local pairs=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do pairs+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  env "${unset_all[@]}" "${pairs[@]}" "${compose[@]}" --env-file "$env_file" \
    -f docker-compose.yml config "$@"
}

echo "compose-check: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"

# 1. Valid with the required variables; refused without each of them.
if ! run_compose "$work/empty.env" "${sample[@]}" >"$work/resolved.yml" 2>"$work/err"; then
  echo "FAIL: ${compose[*]} config rejects docker-compose.yml:" >&2
  cat "$work/err" >&2
  exit 1
fi
run_compose "$work/empty.env" "${sample[@]}" -- -q >/dev/null 2>&1 \
  || { echo "FAIL: ${compose[*]} config -q fails" >&2; exit 1; }
echo "ok: docker-compose.yml parses and validates"

for required in SECRET_KEY POSTGRES_PASSWORD; do
  kept=()
  for pair in "${sample[@]}"; do [[ "$pair" == "$required="* ]] || kept+=("$pair"); done
  if run_compose "$work/empty.env" "${kept[@]}" >/dev/null 2>"$work/err"; then
    echo "FAIL: docker-compose.yml is accepted without $required; it must fail clearly" >&2
    exit 1
  fi
  if ! grep -q "set $required" "$work/err"; then
    echo "FAIL: without $required, compose fails but does not say to set it:" >&2
    cat "$work/err" >&2
    exit 1
  fi
done
echo "ok: a missing SECRET_KEY or POSTGRES_PASSWORD stops compose, naming it"

# `app_database_url RESOLVED.yml`: the app service's DATABASE_URL in a resolved file.
app_database_url() {
  "$python" -c 'import sys, yaml
env = yaml.safe_load(open(sys.argv[1]))["services"]["app"].get("environment") or {}
if isinstance(env, list):
    env = dict(item.split("=", 1) for item in env)
print(env.get("DATABASE_URL", ""))' "$1"
}

# 2. .env.example: no DATABASE_URL in it (a .env copied from it is also read by a
#    `cargo run` on the host, where the host `db` does not exist); the compose file
#    builds the app's URL from POSTGRES_PASSWORD, whatever DATABASE_URL says.
if grep -nE '^[[:space:]]*#?[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=' .env.example >"$work/err"; then
  echo "FAIL: .env.example sets DATABASE_URL (even commented out); docker-compose.yml builds it from POSTGRES_PASSWORD:" >&2
  cat "$work/err" >&2
  exit 1
fi
printf 'DATABASE_URL=postgres://someone:else@elsewhere:5432/other\n' >"$work/stray.env"
for source in "the environment" ".env"; do
  if [[ $source == .env ]]; then
    run_compose "$work/stray.env" "${sample[@]}" >"$work/stray.yml" 2>"$work/err" || true
  else
    run_compose "$work/empty.env" "${sample[@]}" DATABASE_URL=postgres://someone:else@elsewhere:5432/other \
      >"$work/stray.yml" 2>"$work/err" || true
  fi
  found="$(app_database_url "$work/stray.yml" 2>/dev/null || true)"
  if [[ "$found" != "$expected_url" ]]; then
    echo "FAIL: with DATABASE_URL set in $source, the app's DATABASE_URL is '$found'; docker-compose.yml" >&2
    echo "      must build it from POSTGRES_PASSWORD alone ($expected_url)" >&2
    cat "$work/err" >&2
    exit 1
  fi
done
echo "ok: .env.example has no DATABASE_URL; the app's is built from POSTGRES_PASSWORD, whatever DATABASE_URL says"

#    Then .env.example is refused until SECRET_KEY is filled in, and valid after,
#    with a DATABASE_URL whose user, password and database are the db service's.
if run_compose .env.example >/dev/null 2>"$work/err" || ! grep -q "set SECRET_KEY" "$work/err"; then
  echo "FAIL: .env.example as is (no SECRET_KEY) should be refused for want of SECRET_KEY" >&2
  cat "$work/err" >&2
  exit 1
fi
cp .env.example "$work/filled.env"
echo "SECRET_KEY=$(openssl rand -hex 32 2>/dev/null || echo 0123456789abcdef0123456789abcdef0123456789abcdef)" >>"$work/filled.env"
if ! run_compose "$work/filled.env" >"$work/example.yml" 2>"$work/err"; then
  echo "FAIL: .env.example with a SECRET_KEY is not a valid configuration:" >&2
  cat "$work/err" >&2
  exit 1
fi
"$python" - "$work/example.yml" <<'EOF'
import sys, urllib.parse, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
url = urllib.parse.urlsplit(services["app"]["environment"]["DATABASE_URL"])
db = services["db"]["environment"]
expected = (db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], "db", db["POSTGRES_DB"])
found = (url.username, url.password, url.hostname, url.path.lstrip("/"))
if found != expected:
    sys.exit(f"FAIL: .env.example: DATABASE_URL names user/password/host/db {found}, "
             f"but the db service has {expected}")
EOF
echo "ok: .env.example plus a SECRET_KEY is a valid configuration for the bundled db"

# 3. What the service needs, in the resolved file and the Dockerfile.
"$python" scripts/compose_tool.py check "$work/resolved.yml"
echo "ok: the compose file and the Dockerfile hold the production set-up"
echo "compose-check: passed"
