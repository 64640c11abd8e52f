# Sourced by the scripts that run the release binary (fuzz.sh, browser-test.sh): how
# they stop it. The caller keeps the server's pid in `server_pid`.

# Stops the server in `server_pid` with SIGTERM, as an operator would, and SIGKILL if
# it has not exited 10 s later; then forgets it.
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$server_pid" ]]; then wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
