#!/usr/bin/env python3
"""Forgot-password time for a known address vs unknown ones (issue 16: not enumerable).

Usage: bench/forgot_timing.py [tries] [warm-up]      (defaults: 5000 and 500 of each)
Environment: BENCH_BIN=/path/to/chatbot uses that binary (default target/release/chatbot,
built with `cargo build --release -p chatbot-server` when it is missing).

Like bench/login_timing.py, but it starts the server itself, three times, each on a fresh
SQLite database in a temporary directory with rate limits off:
  1. mail written to .eml files (mail.transport = file);
  2. mail sent over SMTP to a relay that refuses the connection (a free port, nothing
     listening);
  3. mail sent over SMTP to a relay that takes the connection and never answers (each
     attempt holds the mail thread for the SMTP timeout, 5 s).
Each time it signs up a user with an email, then sends POST /api/password/forgot on one
kept-alive connection: the warm-up, then `tries` for the user's address and `tries` for
addresses no account has (a new one each time, as long as the user's), interleaved ABBA so
that drift in the machine's load, and the background work a request leaves behind, fall on
both alike. Each request's latency is timed client-side (request written to response read).

Prints per group n, median, p90, p99 and mean; the difference of the medians with a 95 %
bootstrap interval; a Mann-Whitney U test (does one group tend to be slower?) and a
Kolmogorov-Smirnov test (do the distributions differ anywhere, tails included). The same
for the server's own time of the same requests (latency_ms in its request log, matched by
the X-Request-Id header), which leaves out the client and the loopback.

Checks that every answer is 202 with the same body (and the same headers but Date and the
request id), that the .eml files went to the user's address only (one per request for it,
plus the sign-up's verification mail), and that with a dead relay every one of those mails
was still queued, unsent, at shutdown. Warns when cargo or rustc ran while it measured:
measure again on a quiet machine.
"""
import email, email.policy, glob, http.client, json, math, os, random, re, shutil
import socket, statistics, subprocess, sys, tempfile, time

from benchlib import Compilers, Server, free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIES = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
WARMUP = int(sys.argv[2]) if len(sys.argv) > 2 else 500
USER = {"username": "timing", "password": "the right password", "email": "timing@example.com"}
VARYING = {"date", "x-request-id"}  # headers allowed to differ from one answer to the next


COMPILERS = None


def binary():
    path = os.environ.get("BENCH_BIN") or os.path.join(REPO, "target/release/chatbot")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "chatbot-server"],
                       cwd=REPO, check=True)
    return os.path.abspath(path)


def start_server(bin_path, extra_env):
    """A server with rate limits off; none of the caller's CHATBOT__ settings."""
    settings = {"CHATBOT__RATE_LIMIT__ENABLED": "false", **extra_env}
    return Server(bin_path, "forgot-timing-", settings,
                  keep=lambda name: not name.startswith("CHATBOT__"), ready="/api/ready")


def post(conn, path, body):
    payload = json.dumps(body)
    start = time.perf_counter()
    conn.request("POST", path, payload, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - start
    headers = tuple(sorted((k.lower(), v) for k, v in response.getheaders()))
    return response.status, data, headers, elapsed


def percentile(sorted_values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    k = (len(sorted_values) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def bootstrap_median_difference(a, b, reps=2000, seed=16):
    rng = random.Random(seed)
    diffs = sorted(statistics.median(rng.choices(a, k=len(a))) -
                   statistics.median(rng.choices(b, k=len(b))) for _ in range(reps))
    return percentile(diffs, 2.5), percentile(diffs, 97.5)


def mann_whitney(a, b):
    """U of a against b, P(a > b) (ties count half), and the two-sided p (normal
    approximation with the tie correction)."""
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    r1 = sum(r for r, (_, g) in zip(ranks, pooled) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u - n1 * n2 / 2) / sigma if sigma else 0.0
    return u, u / (n1 * n2), math.erfc(abs(z) / math.sqrt(2))


def kolmogorov_smirnov(a, b):
    """The two-sample KS statistic D (the largest gap between the two distributions, in
    the tails too) and its asymptotic p-value."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def mails(mail_dir):
    found = []
    for path in glob.glob(os.path.join(mail_dir, "*.eml")):
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        found.append((",".join(a.addr_spec for a in message["To"].addresses),
                      str(message["Subject"])))
    return found


def run(name, bin_path, extra_env, check_files):
    print(f"\n== {name}")
    load = os.getloadavg()[0]
    COMPILERS.take()
    server = start_server(bin_path, extra_env)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, data, _, _ = post(conn, "/api/signup", USER)
        assert status == 201, (status, data)
        groups = {"existing address": [], "unknown address": []}
        ids = {"existing address": [], "unknown address": []}  # X-Request-Id of each sample
        bodies, header_sets, statuses = set(), {}, {}
        sent = {"existing address": 0, "unknown address": 0}
        unknown = 0
        for i in range(WARMUP + TRIES):
            pair = ["existing address", "unknown address"]
            if i % 2:  # ABBA: each group goes first in half of the pairs
                pair.reverse()
            for group in pair:
                if group == "existing address":
                    address = USER["email"]
                else:
                    unknown += 1
                    address = f"x{unknown:05d}@example.com"  # as long as the user's
                status, data, headers, t = post(conn, "/api/password/forgot", {"email": address})
                statuses[status] = statuses.get(status, 0) + 1
                bodies.add(data)
                for k, v in headers:
                    header_sets.setdefault(k, set()).add(v)
                sent[group] += 1
                if i >= WARMUP:
                    groups[group].append(t * 1000)
                    ids[group].append(dict(headers).get("x-request-id"))
        conn.close()
        compilers = COMPILERS.take()
        print(f"(load average {load:.2f} before; "
              + (f"WARNING: {compilers} cargo or rustc processes ran while measuring)" if compilers
                 else "no cargo or rustc ran while measuring)"))

        for group, values in groups.items():
            s = sorted(values)
            print(f"{group:16} n {len(s)}  median {statistics.median(s):6.3f} ms  "
                  f"p90 {percentile(s, 90):6.3f} ms  p99 {percentile(s, 99):6.3f} ms  "
                  f"mean {statistics.fmean(s):6.3f} ms")
        a, b = groups["existing address"], groups["unknown address"]
        ma, mb = statistics.median(a), statistics.median(b)
        lo, hi = bootstrap_median_difference(a, b)
        _, p_greater, p_value = mann_whitney(a, b)
        print(f"difference of medians (existing - unknown) {(ma - mb) * 1000:+.1f} µs "
              f"({(ma - mb) / max(ma, mb) * 100:+.1f}%), 95% bootstrap interval "
              f"[{lo * 1000:+.1f}, {hi * 1000:+.1f}] µs")
        d, p_ks = kolmogorov_smirnov(a, b)
        print(f"Mann-Whitney: P(an existing-address request is slower than an unknown one) "
              f"= {p_greater:.3f}, two-sided p = {p_value:.3g}; Kolmogorov-Smirnov D = {d:.3f},"
              f" p = {p_ks:.3g}")

        total = sum(sent.values())
        varying = sorted(k for k, v in header_sets.items() if len(v) > 1)
        ok = statuses == {202: total} and len(bodies) == 1 and set(varying) <= VARYING
        print(f"answers: {total} ({sent['existing address']} + {sent['unknown address']} with "
              f"the warm-up), statuses {statuses}, {len(bodies)} distinct body: "
              f"{next(iter(bodies)).decode()}; headers that differ: {', '.join(varying) or 'none'}"
              f" -> {'OK' if ok else 'FAILED'}")

        if check_files:
            expected = sent["existing address"] + 1  # and the sign-up's verification mail
            deadline, last, changed = time.time() + 120, -1, time.time()
            while time.time() < deadline and time.time() - changed < 10:
                seen = len(glob.glob(os.path.join(server.mail_dir, "*.eml")))
                if seen >= expected:
                    break
                if seen != last:
                    last, changed = seen, time.time()
                time.sleep(0.2)
            time.sleep(1)  # anything more would be a mail too many
            found = mails(server.mail_dir)
            counts = {}
            for to, subject in found:
                counts[(to, subject)] = counts.get((to, subject), 0) + 1
            want = {(USER["email"], "Reset your password"): sent["existing address"],
                    (USER["email"], "Verify your email address"): 1}
            mail_ok = counts == want
            print(f"mail: {len(found)} .eml files: " + "; ".join(
                f"{n} '{s}' to {t}" for (t, s), n in sorted(counts.items()))
                + f" -> {'OK' if mail_ok else 'FAILED (expected ' + str(want) + ')'}")
            ok = ok and mail_ok
        else:  # wait for the relay's first failure (a timeout takes 5 s), to log it
            deadline = time.time() + 20
            while time.time() < deadline and "mail not sent" not in server.log_text():
                time.sleep(0.2)
    finally:
        log = server.stop()

    # The server's own time for each request (its request log, matched by request id).
    logged = dict(re.findall(r"request\{id=(\w+)\}.*latency_ms=([0-9.]+)", log))
    server_side = {g: [float(logged[i]) for i in v if i in logged] for g, v in ids.items()}
    if all(len(v) == TRIES for v in server_side.values()):
        print("server side (the request log's latency_ms of the same requests):")
        for group, values in server_side.items():
            s = sorted(values)
            print(f"  {group:16} median {statistics.median(s):6.3f} ms  p90 "
                  f"{percentile(s, 90):6.3f} ms  p99 {percentile(s, 99):6.3f} ms  "
                  f"mean {statistics.fmean(s):6.3f} ms")
        a, b = server_side["existing address"], server_side["unknown address"]
        lo, hi = bootstrap_median_difference(a, b)
        _, p_greater, p_value = mann_whitney(a, b)
        d, p_ks = kolmogorov_smirnov(a, b)
        print(f"  difference of medians {(statistics.median(a) - statistics.median(b)) * 1000:+.1f}"
              f" µs, 95% bootstrap interval [{lo * 1000:+.1f}, {hi * 1000:+.1f}] µs; "
              f"P(existing slower) = {p_greater:.3f}, p = {p_value:.3g}; KS D = {d:.3f}, "
              f"p = {p_ks:.3g}")
    else:
        print("server side: the request log did not name every request")
    prepare_failed = log.count("could not prepare a password reset mail")
    if not check_files:
        failures = [line for line in log.splitlines() if "mail not sent; trying again" in line]
        attempts = len(failures)
        sent_count = log.count("mail sent")
        unsent = re.search(r"unsent=(\d+)", log)
        unsent = int(unsent.group(1)) if unsent else 0
        expected = sent["existing address"] + 1
        mail_ok = sent_count == 0 and unsent == expected and attempts > 0
        reason = re.search(r"reason=(.*)$", failures[0]).group(1) if failures else "-"
        print(f"mail: none sent, {attempts} failed attempts logged (the first: {reason}), "
              f"{unsent} still queued at shutdown (expected {expected}: one per request for "
              f"the address, and the verification) -> {'OK' if mail_ok else 'FAILED'}")
        ok = ok and mail_ok
    if prepare_failed:
        print(f"{prepare_failed} reset mails could not be prepared (see the server log)")
        ok = False
    return ok, groups, compilers


def main():
    # A copy, so that a build elsewhere on the machine cannot swap it between the runs.
    snapshot = tempfile.TemporaryDirectory(prefix="forgot-timing-bin-")
    bin_path = shutil.copy2(binary(), os.path.join(snapshot.name, "chatbot"))
    try:
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    building = subprocess.run(["pgrep", "-x", "rustc|cargo"], capture_output=True).stdout.split()
    print(f"forgot-password timing: {TRIES} tries per group after {WARMUP} warm-up pairs; "
          f"binary {binary()} (run from a copy), commit {commit}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} before the run"
          + (f"; WARNING: {len(building)} cargo or rustc running" if building else ""))
    global COMPILERS
    COMPILERS = Compilers()
    results = []
    ok, groups, busy = run("mail to .eml files", bin_path, {"CHATBOT__MAIL__TRANSPORT": "file"}, True)
    results.append(("files", ok, groups, busy))
    smtp = {"CHATBOT__MAIL__TRANSPORT": "smtp", "CHATBOT__MAIL__SMTP_TLS": "none",
            "CHATBOT__MAIL__SHUTDOWN_GRACE_SECONDS": "1"}
    refused = free_port()  # nothing listens there
    ok, groups, busy = run(f"SMTP, relay refuses (smtp://127.0.0.1:{refused}, nothing listening)",
                     bin_path, {**smtp, "CHATBOT__MAIL__SMTP_URL": f"smtp://127.0.0.1:{refused}"},
                     False)
    results.append(("SMTP, refused", ok, groups, busy))
    with socket.socket() as silent:  # takes connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        ok, groups, busy = run(f"SMTP, relay never answers (smtp://127.0.0.1:{port}, 5 s timeout)",
                         bin_path, {**smtp, "CHATBOT__MAIL__SMTP_URL": f"smtp://127.0.0.1:{port}"},
                         False)
    results.append(("SMTP, silent", ok, groups, busy))

    print("\n== medians by transport (separate servers, one after another)")
    for name, _, groups, _ in results:
        print(f"{name:14} existing {statistics.median(groups['existing address']):6.3f} ms  "
              f"unknown {statistics.median(groups['unknown address']):6.3f} ms")
    failed = [name for name, ok, _, _ in results if not ok]
    busy = [name for name, _, _, compilers in results if compilers]
    if busy:
        print(f"WARNING: a build ran while measuring {', '.join(busy)}: measure again")
    print(f"load average after the run {os.getloadavg()[0]:.2f}; "
          + ("all checks passed" if not failed else f"FAILED: {', '.join(failed)}"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
