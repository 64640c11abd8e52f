#!/usr/bin/env bash
# p99 of GET /api/conversations alone, then while 64 clients hammer /api/login at
# the production bcrypt cost (issue 4: bounded hashing). Needs wrk and a release build.
# Usage: bench/login_flood.sh   (uses port 5099 and a fresh SQLite file under /tmp)
set -euo pipefail
BIN="$(dirname "$0")/../target/release/chatbot"
DIR=$(mktemp -d)
B=http://127.0.0.1:5099
H='Content-Type: application/json'
(cd "$DIR" && PORT=5099 CHATBOT__RATE_LIMIT__ENABLED=false SECRET_KEY=$(openssl rand -hex 32) \
  exec "$(realpath "$OLDPWD/$BIN")" >server.log 2>&1) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
sleep 1.5
curl -sf -X POST $B/api/signup -H "$H" -d '{"username":"bench","password":"correct horse"}' >/dev/null
curl -sf -c "$DIR/jar" -X POST $B/api/login -H "$H" -d '{"username":"bench","password":"correct horse"}' >/dev/null
COOKIE=$(awk '$6=="session"{print "session="$7}' "$DIR/jar")
for c in $(seq 20); do
  id=$(curl -sf -b "$DIR/jar" -X POST $B/api/conversations -H "$H" -d "{\"name\":\"c$c\"}" | sed 's/.*"id":\([0-9]*\).*/\1/')
  for m in $(seq 10); do
    curl -sf -b "$DIR/jar" -X POST "$B/api/conversations/$id/messages" -H "$H" -d "{\"text\":\"message $m of $c\"}" >/dev/null
  done
done
cat > "$DIR/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body   = '{"username":"bench","password":"wrong password"}'
wrk.headers["Content-Type"] = "application/json"
LUA
p99() { grep -E '^ +99%' | awk '{print $2}'; }
echo "GET /api/conversations, 4 connections, alone:"
wrk -t1 -c4 -d10s --latency -H "Cookie: $COOKIE" $B/api/conversations | tee "$DIR/alone" | grep -E 'Requests/sec|99%'
wrk -t1 -c64 -d16s --latency -s "$DIR/login.lua" $B/api/login > "$DIR/flood" &
FLOOD=$!
sleep 3
echo "GET /api/conversations, 4 connections, while 64 connections hammer /api/login:"
wrk -t1 -c4 -d10s --latency -H "Cookie: $COOKIE" $B/api/conversations | tee "$DIR/loaded" | grep -E 'Requests/sec|99%'
wait $FLOOD
echo "the login flood itself:"; grep -E 'Requests/sec|99%|Non-2xx' "$DIR/flood"
