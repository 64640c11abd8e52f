#!/bin/bash
# The container's HEALTHCHECK: exits 0 when GET <path> (default /api/health) on the
# local server answers 200, 1 otherwise, printing the status line either way.
#
# It speaks HTTP/1.1 through bash's /dev/tcp, so the image needs no curl or wget. The
# port is the one the server listens on: CHATBOT__SERVER__PORT, else PORT, else 5000.
# Docker's --timeout bounds it; `read -t` bounds the wait for an answer too.
#
#   chatbot-healthcheck               # liveness:  /api/health
#   chatbot-healthcheck /api/ready    # readiness: /api/ready (the database answers)
set -u
path="${1:-/api/health}"
port="${CHATBOT__SERVER__PORT:-${PORT:-5000}}"

if ! exec 3<>"/dev/tcp/127.0.0.1/${port}"; then
  echo "unhealthy: nothing listens on 127.0.0.1:${port}" >&2
  exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: chatbot-healthcheck\r\nConnection: close\r\n\r\n' \
  "$path" "$port" >&3
status=""
IFS= read -r -t 5 status <&3 || true
exec 3<&-
status="${status%$'\r'}"
case "$status" in
  "HTTP/1."[01]" 200"*)
    echo "healthy: GET ${path}: ${status}"
    exit 0
    ;;
esac
echo "unhealthy: GET ${path}: ${status:-no answer}" >&2
exit 1
