#!/usr/bin/env python3
"""A legitimate login during a wrong-password flood spread over many addresses
(issue 19, item 1: the hashing queue is unbounded and the limits are per address only).

Usage: bench/login_flood_spread.py [--addresses 40] [--per-address 5] [--rounds 3]
                                   [--bin target/release/chatbot] [--cost 12]
                                   [--delay 0.3] [--timeout 120] [--flood-user other|victim]
e.g.   python3 bench/login_flood_spread.py --bin /tmp/chatbot-before --addresses 5 --rounds 1
Environment: CHATBOT_BIN=/path/to/chatbot instead of --bin (default target/release/chatbot,
which must exist: build it with `cargo build --release -p chatbot-server`); CHATBOT__...
variables pass through to the server (extra settings), except the ones set here.

The review's finding: 40 loopback addresses x 5 wrong-password logins each (every one
within its address's burst of 5) made a real user's correct login wait 33.6 s, growing
linearly with the number of addresses. Wanted: a legitimate login during such a flood gets
an answer (200, or 503 with Retry-After) within 2 s.

It starts the server itself (a copy of the binary, so that a build cannot swap it while it
runs) on a fresh SQLite database in a temporary directory, on a free port, with the
production bcrypt cost (auth.bcrypt_cost 12 unless --cost), the default rate limits on and
no trusted proxy (each source address is its own client), and waits for GET /api/health. It
signs up the victim (the legitimate user) and the account the flood attacks, from an address
of their own, so that the victim's address 127.0.0.1 starts each round with a full bucket.

Each round: `addresses` loopback addresses, a fresh range per round so that every bucket is
full (round 1: 127.0.0.2 .. 127.0.0.(N+1), round 2: 127.0.1.2 .., and so on), each open
`per-address` connections bound to it; then all of them send a wrong-password
POST /api/login at once (threads released together). `delay` seconds later the victim logs
in from 127.0.0.1 with the right password, on a new connection: the time to its answer
(connection included), its status and Retry-After. The round ends when the whole flood has
its answers (and, when rounds come quickly, once 127.0.0.1 has a token again).

Prints per round the victim's status, latency and Retry-After, the flood's answers by status
and how long it took; then the longest login and whether every login met the target (200,
or 503 with Retry-After, within 2 s). Exits non-zero only when the setup fails (no binary,
the server does not start, sign-up refused, a loopback address cannot be bound), never
because a login was slow: it measures. Warns when cargo or rustc ran while it measured.
"""
import argparse, http.client, ipaddress, json, os, resource, shutil, socket, statistics
import subprocess, sys, tempfile, threading, time

from benchlib import Compilers, Server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VICTIM = {"username": "victim", "password": "the right password"}
TARGET = {"username": "target", "password": "the target's password"}
WRONG = "wrong password"
LEGIT_ADDRESS = "127.0.0.1"
SIGNUP_ADDRESS = "127.254.0.1"  # out of every round's range and the victim's
TARGET_SECONDS = 2.0
STATUSES = (200, 401, 429, 503)


def start_server(bin_path, cost):
    """A server at bcrypt `cost`, the default limits on, no trusted proxy (each source
    address its own client); the caller's other CHATBOT__ settings pass through."""
    settings = {"CHATBOT__AUTH__BCRYPT_COST": str(cost)}
    return Server(bin_path, "login-flood-spread-", settings,
                  keep=lambda name: name not in ("CHATBOT__RATE_LIMIT__TRUSTED_PROXIES",
                                                 "CHATBOT__SERVER__TRUSTED_PROXIES"))


def post(port, source, path, body, timeout):
    """One request on a new connection from `source`: (status, Retry-After, seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0))
    start = time.perf_counter()
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After"), time.perf_counter() - start
    finally:
        conn.close()


def round_addresses(round_index, count):
    """A fresh range per round: round 1 from 127.0.0.2, round 2 from 127.0.1.2, ...
    (each round takes as many /24s as `count` needs)."""
    blocks = (count + 2 + 255) // 256
    first = int(ipaddress.IPv4Address("127.0.0.0")) + round_index * blocks * 256 + 2
    return [str(ipaddress.IPv4Address(first + i)) for i in range(count)]


def check_bind(address):
    try:
        with socket.socket() as s:
            s.bind((address, 0))
    except OSError as error:
        sys.exit(f"setup: cannot bind a socket to {address} ({error}); loopback addresses "
                 "other than 127.0.0.1 work on Linux")


def flood(port, addresses, per_address, username, timeout):
    """Opens every connection, then sends every request at once. Returns the moment they
    were released (perf_counter), a thread that ends when all have answered, and the
    results list (status or error name, seconds from the release to the answer)."""
    total = len(addresses) * per_address
    barrier = threading.Barrier(total + 1)
    results = []
    lock = threading.Lock()

    def one(address):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                          source_address=(address, 0))
        try:
            conn.connect()
        except OSError as error:
            conn = error
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        start = released[0]
        if isinstance(conn, OSError):
            outcome = f"connect: {type(conn).__name__}"
        else:
            try:
                conn.request("POST", "/api/login",
                             json.dumps({"username": username, "password": WRONG}),
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                outcome = response.status
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
            finally:
                conn.close()
        with lock:
            results.append((outcome, time.perf_counter() - start))

    released = [None]
    threads = [threading.Thread(target=one, args=(a,), daemon=True)
               for a in addresses for _ in range(per_address)]
    for t in threads:
        t.start()
    # The barrier's last party is this thread: note the time just before it lets them go.
    while barrier.n_waiting < total:
        time.sleep(0.001)
    released[0] = time.perf_counter()
    barrier.wait()

    def join():
        for t in threads:
            t.join()
    waiter = threading.Thread(target=join, daemon=True)
    waiter.start()
    return released[0], waiter, results


def main():
    parser = argparse.ArgumentParser(
        description="A legitimate login during a wrong-password flood spread over many "
                    "loopback addresses (issue 19, item 1).")
    parser.add_argument("--addresses", type=int, default=40,
                        help="source addresses in the flood (default 40)")
    parser.add_argument("--per-address", type=int, default=5,
                        help="wrong-password logins per address, all at once (default 5, "
                             "the burst)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="legitimate logins, each in a fresh flood (default 3)")
    parser.add_argument("--bin", default=os.environ.get("CHATBOT_BIN")
                        or os.path.join(REPO, "target/release/chatbot"),
                        help="the server binary (default $CHATBOT_BIN or "
                             "target/release/chatbot)")
    parser.add_argument("--cost", type=int,
                        default=int(os.environ.get("CHATBOT__AUTH__BCRYPT_COST", "12")),
                        help="auth.bcrypt_cost (default 12, production's)")
    parser.add_argument("--delay", type=float, default=0.3,
                        help="seconds between the flood and the legitimate login (default 0.3)")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds any one request may take before it counts as "
                             "unanswered (default 120)")
    parser.add_argument("--flood-user", choices=("other", "victim"), default="other",
                        help="the account the flood guesses: another one (default) or the "
                             "victim's own")
    args = parser.parse_args()
    if min(args.addresses, args.per_address, args.rounds) < 1:
        parser.error("--addresses, --per-address and --rounds must be at least 1")

    if not os.path.isfile(args.bin):
        sys.exit(f"setup: no binary at {args.bin}: build it with "
                 "`cargo build --release -p chatbot-server`, or give --bin / CHATBOT_BIN")
    # Every flood request holds a file descriptor here, and one in the server.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.addresses * args.per_address + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))
    rounds = [round_addresses(r, args.addresses) for r in range(args.rounds)]
    for address in {SIGNUP_ADDRESS, LEGIT_ADDRESS, rounds[0][0], rounds[-1][-1]}:
        check_bind(address)

    # A copy, so that a build elsewhere on the machine cannot swap it during the run.
    snapshot = tempfile.TemporaryDirectory(prefix="login-flood-spread-bin-")
    bin_path = shutil.copy2(args.bin, os.path.join(snapshot.name, "chatbot"))
    commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "?"
    building = subprocess.run(["pgrep", "-x", "rustc|cargo"], capture_output=True).stdout.split()
    print(f"login flood spread over addresses: {args.addresses} addresses x {args.per_address} "
          f"wrong-password logins, {args.rounds} round(s), legitimate login {args.delay} s after "
          f"the flood; bcrypt cost {args.cost}; binary {os.path.abspath(args.bin)} (run from a "
          f"copy), commit {commit}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} before the run"
          + (f"; WARNING: {len(building)} cargo or rustc running" if building else ""))
    per_minute = int(os.environ.get("CHATBOT__RATE_LIMIT__AUTH_PER_MINUTE", "10") or 10)

    server = start_server(bin_path, args.cost)
    if server.passed:
        print(f"settings passed through from the environment: {', '.join(server.passed)}")
    compilers = Compilers()
    results = []
    try:
        for user in (VICTIM, TARGET):
            status, _, _ = post(server.port, SIGNUP_ADDRESS, "/api/signup", user, args.timeout)
            if status != 201:
                text = server.stop()
                sys.exit(f"setup: signing up {user['username']} answered {status}, not 201:\n"
                         f"{text[-4000:]}")
        flood_user = VICTIM["username"] if args.flood_user == "victim" else TARGET["username"]
        last_login = None
        for r, addresses in enumerate(rounds, 1):
            if last_login is not None:  # 127.0.0.1 gets a token back every 60/per_minute s
                wait = last_login + 60 / max(per_minute, 1) - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            compilers.take()
            load = os.getloadavg()[0]
            start, waiter, flood_results = flood(server.port, addresses, args.per_address,
                                                 flood_user, args.timeout)
            time.sleep(max(0.0, start + args.delay - time.perf_counter()))
            last_login = time.perf_counter()
            try:
                status, retry_after, seconds = post(server.port, LEGIT_ADDRESS, "/api/login",
                                                    VICTIM, args.timeout)
            except (OSError, http.client.HTTPException) as error:
                status, retry_after = type(error).__name__, None
                seconds = time.perf_counter() - last_login
            waiter.join()
            busy = compilers.take()
            counts = {s: 0 for s in STATUSES}
            other = {}
            for outcome, _ in flood_results:
                if outcome in counts:
                    counts[outcome] += 1
                else:
                    other[outcome] = other.get(outcome, 0) + 1
            times = sorted(t for _, t in flood_results)
            met = seconds <= TARGET_SECONDS and (
                status == 200 or (status == 503 and retry_after is not None))
            results.append((status, seconds, met, busy))
            print(f"\n== round {r}: flood from {addresses[0]} .. {addresses[-1]} "
                  f"({len(flood_results)} requests, as '{flood_user}'; load average {load:.2f}"
                  + (f"; WARNING: {busy} cargo or rustc processes ran)" if busy else ")"))
            answer = (f"status {status}, {seconds:.3f} s" if isinstance(status, int)
                      else f"no answer ({status}) after {seconds:.3f} s")
            print(f"legitimate login from {LEGIT_ADDRESS}: {answer}, Retry-After "
                  f"{retry_after if retry_after is not None else '-'}"
                  f" -> {'within' if met else 'NOT within'} the target")
            print("flood answers: " + ", ".join(f"{s} x{n}" for s, n in counts.items())
                  + f", other x{sum(other.values())}"
                  + (f" ({', '.join(f'{k} x{n}' for k, n in sorted(other.items(), key=str))})"
                     if other else "")
                  + f"; flood took {times[-1]:.3f} s (median answer {statistics.median(times):.3f}"
                    f" s)")
    finally:
        compilers.stop.set()
        log = server.stop()
        snapshot.cleanup()
    panics = log.count("panicked")
    if panics:
        print(f"WARNING: the server log mentions {panics} panics")

    worst = max(results, key=lambda x: x[1])
    all_met = all(met for _, _, met, _ in results)
    busy = sum(1 for *_, b in results if b)
    print(f"\nsummary: {args.addresses} addresses x {args.per_address}, {len(results)} round(s): "
          f"longest legitimate login {'' if isinstance(worst[0], int) else 'over '}"
          f"{worst[1]:.3f} s (status {worst[0]}); statuses "
          f"{[s for s, *_ in results]}; target (200, or 503 with Retry-After, within "
          f"{TARGET_SECONDS:g} s) {'MET in every round' if all_met else 'NOT MET'}"
          + (f"; WARNING: a build ran during {busy} of the rounds: measure again on a quiet "
             "machine" if busy else ""))


if __name__ == "__main__":
    main()
