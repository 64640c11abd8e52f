#!/usr/bin/env python3
"""WebSocket measurements (issue 15): idle sockets and the server's memory, and how late
the deltas of a streaming reply reach 10 sockets of one user. Run by bench/ws_bench.sh,
which starts the servers; needs the `websockets` package (the script's venv has it).

Usage:
  ws_bench.py idle URL SERVER_PID [--counts 1000,10000] [--per-user 10] [--hold 25]
  ws_bench.py latency WRITER_URL [READER_URL] [--sockets 10] [--replies 20] [--title T]

Each prints a Markdown section on stdout, progress on stderr, and exits 1 when the
figures cannot be trusted (sockets refused or closed, deltas missing).

Timing: every arrival time is taken when the client's event loop parses the frame off
the socket (`data_received`, through the `process_event` hook of the websockets
library), not when a task gets round to it, so a busy client adds as little as it can.
All sockets and the reference stream are read by one asyncio loop in one process.
"""
import argparse
import asyncio
import collections
import concurrent.futures
import http.client
import json
import math
import os
import resource
import sys
import time
import urllib.parse

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import State

PASSWORD = "correct horse battery"
# The simulated bot quotes up to 120 characters of this and adds a few words of its own:
# about 28 deltas per reply.
PROMPT = ("please tell me everything you know about the old lighthouses on the northern "
          "coast and the keepers who lived in them through the long dark winters")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --- the client ------------------------------------------------------------------------


class TimedConnection(ClientConnection):
    """A client socket that notes when each text frame arrived and counts the server's
    pings (answered by the library as they come)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals = collections.deque()
        self.pings = 0

    def process_event(self, event):
        if self.response is not None and isinstance(event, Frame):
            if event.opcode is Opcode.TEXT:
                self.arrivals.append(time.perf_counter())
            elif event.opcode is Opcode.PING:
                self.pings += 1
        super().process_event(event)

    async def recv_timed(self, timeout=None):
        """(arrival time, decoded JSON) of the next message."""
        text = await asyncio.wait_for(self.recv(), timeout)
        at = self.arrivals.popleft() if self.arrivals else time.perf_counter()
        return at, json.loads(text)


def ws_url(base):
    parsed = urllib.parse.urlsplit(base)
    return f"ws://{parsed.netloc}/api/ws"


async def open_socket(base, cookie):
    # No Origin header (allowed), no compression, no client pings: the sockets stay idle
    # but for the server's pings, which the library answers.
    return await connect(ws_url(base), additional_headers={"Cookie": cookie},
                         create_connection=TimedConnection, compression=None, proxy=None,
                         ping_interval=None, open_timeout=60, close_timeout=5,
                         max_queue=4096)


# --- REST ------------------------------------------------------------------------------


def request(base, method, path, body=None, cookie=None, headers=None):
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def user_cookie(base, username):
    """Signs `username` up and logs in: the session cookie."""
    user = {"username": username, "password": PASSWORD}
    response, data = request(base, "POST", "/api/signup", user)
    if response.status != 201:
        raise SystemExit(f"signup {username}: {response.status} {data[:200]!r}")
    response, data = request(base, "POST", "/api/login", user)
    if response.status != 200:
        raise SystemExit(f"login {username}: {response.status} {data[:200]!r}")
    return response.getheader("Set-Cookie").split(";")[0]


def user_cookies(base, prefix, count):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: user_cookie(base, f"{prefix}{i}"), range(count)))


def new_conversation(base, cookie):
    response, data = request(base, "POST", "/api/conversations", {"name": "ws bench"}, cookie)
    if response.status != 201:
        raise SystemExit(f"create conversation: {response.status} {data[:200]!r}")
    return json.loads(data)["id"]


class EventStream(asyncio.Protocol):
    """POST …/messages with Accept: text/event-stream, read by the same loop as the
    sockets: (name, id, data, arrival) of each event, the arrival taken in
    data_received like the sockets'."""

    def __init__(self, request_bytes):
        self.request_bytes = request_bytes
        self.raw = b""
        self.body = b""
        self.head = None
        self.chunked = False
        self.events = []
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        transport.write(self.request_bytes)

    def data_received(self, data):
        at = time.perf_counter()
        self.raw += data
        if self.head is None:
            if b"\r\n\r\n" not in self.raw:
                return
            self.head, self.raw = self.raw.split(b"\r\n\r\n", 1)
            status = self.head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                self.fail(f"POST message: {status.decode()}")
                return
            self.chunked = b"transfer-encoding: chunked" in self.head.lower()
        if self.chunked:
            while b"\r\n" in self.raw:
                size_line, rest = self.raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    break
                self.body += rest[:size]
                self.raw = rest[size + 2:]
        else:
            self.body += self.raw
            self.raw = b""
        while b"\n\n" in self.body:
            block, self.body = self.body.split(b"\n\n", 1)
            name, ident, payload = None, None, None
            for line in block.decode().split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    ident = int(line[4:])
                elif line.startswith("data: "):
                    payload = json.loads(line[6:])
            if name:
                self.events.append((name, ident, payload, at))

    def fail(self, why):
        if not self.done.done():
            self.done.set_exception(RuntimeError(why))

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.events)


async def post_streaming(base, cookie, conversation, text):
    parsed = urllib.parse.urlsplit(base)
    body = json.dumps({"text": text}).encode()
    head = (f"POST /api/conversations/{conversation}/messages HTTP/1.1\r\n"
            f"Host: {parsed.netloc}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(lambda: EventStream(head + body),
                                             parsed.hostname, parsed.port)
    return await asyncio.wait_for(stream.done, 60)


# --- figures ---------------------------------------------------------------------------


def pct(values, q):
    """Nearest-rank percentile of a sorted list."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def dist_row(label, samples):
    if not samples:
        return f"| {label} | 0 | — | — | — | — |"
    s = sorted(samples)
    return (f"| {label} | {len(s):,} | {ms(pct(s, 0.5))} | {ms(pct(s, 0.99))} | "
            f"{ms(s[-1])} | {ms(s[0])} |")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    """User + system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kb):
    return f"{kb / 1024:,.1f} MiB"


# --- idle sockets ----------------------------------------------------------------------


async def idle(args):
    counts = [int(c) for c in args.counts.split(",")]
    total = max(counts)
    users = -(-total // args.per_user)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < total + 100:
        raise SystemExit(f"ulimit -n is {soft}: {total} sockets need more (ws_bench.sh raises it)")
    log(f"idle: signing up and logging in {users} users…")
    started = time.perf_counter()
    cookies = user_cookies(args.url, f"idle{int(time.time())}_", users)
    log(f"  {users} users in {time.perf_counter() - started:.1f} s")
    rss = {0: rss_kb(args.pid)}
    sockets = []
    refused = collections.Counter()
    gate = asyncio.Semaphore(args.concurrency)
    opened_in = {}

    async def one(index):
        async with gate:
            try:
                return await open_socket(args.url, cookies[index // args.per_user])
            except Exception as error:  # refused handshakes are counted, not fatal
                refused[f"{type(error).__name__}: {str(error)[:120]}"] += 1
                return None

    for count in counts:
        log(f"  opening sockets up to {count:,}…")
        started = time.perf_counter()
        batch = await asyncio.gather(*(one(i) for i in range(len(sockets), count)))
        sockets += batch
        opened_in[count] = time.perf_counter() - started
        await asyncio.sleep(2)  # let the server settle before reading its memory
        rss[count] = rss_kb(args.pid)
        open_now = sum(1 for s in sockets if s and s.state is State.OPEN)
        log(f"  {open_now:,} open after {opened_in[count]:.1f} s; server RSS {mib(rss[count])}")

    log(f"  holding {total:,} sockets for {args.hold} s (server pings every "
        f"{args.ping_interval} s; a socket silent for two intervals is dropped)…")
    cpu = cpu_seconds(args.pid)
    await asyncio.sleep(args.hold)
    cpu = cpu_seconds(args.pid) - cpu
    rss["held"] = rss_kb(args.pid)
    live = [s for s in sockets if s and s.state is State.OPEN]
    closed = collections.Counter(
        f"{s.close_code} {s.close_reason or ''}".strip() for s in sockets
        if s and s.state is not State.OPEN)
    pings = sorted(s.pings for s in live)

    # Every socket still answers: an application ping on each, all at once.
    log(f"  {len(live):,} still open; sending {{\"type\":\"ping\"}} on each…")

    async def pong(s):
        sent = time.perf_counter()
        await s.send('{"type":"ping"}')
        while True:
            at, frame = await s.recv_timed(30)
            if frame.get("type") == "pong":
                return at - sent

    started = time.perf_counter()
    rtts = await asyncio.gather(*(pong(s) for s in live), return_exceptions=True)
    burst = time.perf_counter() - started
    answered = sorted(r for r in rtts if isinstance(r, float))
    client_rss = rss_kb("self")

    log("  closing…")
    gate = asyncio.Semaphore(500)

    async def close(s):
        async with gate:
            await s.close()

    await asyncio.gather(*(close(s) for s in sockets if s), return_exceptions=True)
    await asyncio.sleep(3)
    rss["closed"] = rss_kb(args.pid)

    print("## Idle sockets\n")
    print(f"One server on SQLite; one client process (Python asyncio, websockets), "
          f"{args.per_user} sockets per user over {users:,} users, opened "
          f"{args.concurrency} at a time; server pings every {args.ping_interval} s, "
          f"the client answers them and sends nothing else. RSS is the server's VmRSS "
          f"(/proc/PID/status), read 2 s after the last socket of a step opened.\n")
    print("| sockets | opened in | open | server RSS | RSS per socket (from 0) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| 0 (users logged in) | — | — | {mib(rss[0])} | — |")
    for count in counts:
        open_at = sum(1 for s in sockets[:count] if s)
        per = (rss[count] - rss[0]) / count
        print(f"| {count:,} | {opened_in[count]:.1f} s | {open_at:,} | {mib(rss[count])} | "
              f"{per:.1f} KiB |")
    print(f"| {total:,} after {args.hold} s | — | {len(live):,} | {mib(rss['held'])} | "
          f"{(rss['held'] - rss[0]) / total:.1f} KiB |")
    print(f"| all closed (+3 s) | — | 0 | {mib(rss['closed'])} | — |")
    print()
    if len(counts) > 1:
        low, high = counts[0], counts[-1]
        print(f"- marginal cost from {low:,} to {high:,} sockets: "
              f"{(rss[high] - rss[low]) / (high - low):.1f} KiB per socket")
    print(f"- refused handshakes: {sum(refused.values())}"
          + "".join(f"; {n} × {why}" for why, n in refused.items()))
    print(f"- closed by the server while idle: {sum(closed.values())}"
          + "".join(f"; {n} × code {why}" for why, n in closed.items()))
    if pings:
        print(f"- server pings received per socket during the hold: min {pings[0]}, "
              f"median {pings[len(pings) // 2]}, max {pings[-1]}; the server's CPU time "
              f"over the hold: {cpu:.2f} s in {args.hold} s ({100 * cpu / args.hold:.1f} % "
              f"of one core: pings and the session checks that go with them)")
    if answered:
        print(f"- `{{\"type\":\"ping\"}}` sent on all {len(live):,} sockets at once: "
              f"{len(answered):,} answered `pong` within {burst:.2f} s (round trip p50 "
              f"{ms(pct(answered, 0.5))}, p99 {ms(pct(answered, 0.99))}, max "
              f"{ms(answered[-1])}); {len(rtts) - len(answered)} failed")
    print(f"- the client process's own RSS with {total:,} sockets: {mib(client_rss)}")
    print()
    return not refused and not closed and len(answered) == total


# --- delta latency ---------------------------------------------------------------------


class Reader:
    """One socket's deltas: (message_id, seq) -> arrival, and the replies it saw end."""

    def __init__(self, socket, where):
        self.socket = socket
        self.where = where
        self.deltas = {}
        self.ended = set()
        self.out_of_order = 0
        self.last_seq = {}
        self.task = asyncio.create_task(self.run())

    async def run(self):
        try:
            while True:
                at, frame = await self.socket.recv_timed()
                kind = frame.get("type")
                if kind == "message.delta":
                    key = (frame["message_id"], frame["seq"])
                    if frame["seq"] <= self.last_seq.get(frame["message_id"], 0):
                        self.out_of_order += 1
                    self.last_seq[frame["message_id"]] = frame["seq"]
                    self.deltas.setdefault(key, at)
                elif kind == "message.updated":
                    self.ended.add(frame["message"]["id"])
        except Exception:
            return  # closed: counted by the caller from the socket's state


async def latency(args):
    writer, reader = args.writer, args.reader or args.writer
    on_reader = args.sockets // 2 if args.reader else 0
    on_writer = args.sockets - on_reader
    cookie = user_cookie(writer, f"lat{int(time.time() * 1000)}")
    readers = ([Reader(await open_socket(writer, cookie), "A") for _ in range(on_writer)]
               + [Reader(await open_socket(reader, cookie), "B") for _ in range(on_reader)])
    await asyncio.sleep(0.5)
    spread_after_first, spread_last, vs_stream = [], [], collections.defaultdict(list)
    b_after_a = []
    missing = 0
    deltas_counted = 0
    for round_ in range(args.warmup + args.replies):
        conversation = await asyncio.to_thread(new_conversation, writer, cookie)
        events = await post_streaming(writer, cookie, conversation, PROMPT)
        reply = next((data["id"] for name, _, data, _ in events if name == "reply"), None)
        if reply is None:
            raise SystemExit(f"no reply event in the stream: {[e[0] for e in events]}")
        stream = {ident: at for name, ident, _, at in events if name == "delta"}
        deadline = time.perf_counter() + 10
        while (any(reply not in r.ended for r in readers if not r.task.done())
               and time.perf_counter() < deadline):
            await asyncio.sleep(0.01)
        if round_ < args.warmup:
            continue
        for seq, made in stream.items():
            arrivals = [(r.where, r.deltas.get((reply, seq))) for r in readers]
            got = [at for _, at in arrivals if at is not None]
            missing += len(arrivals) - len(got)
            if not got:
                continue
            deltas_counted += 1
            first = min(got)
            spread_after_first += sorted(at - first for at in got)[1:]
            spread_last.append(max(got) - first)
            for where, at in arrivals:
                if at is not None:
                    vs_stream[where].append(at - made)
            a_times = [at for where, at in arrivals if where == "A" and at is not None]
            if args.reader and a_times:
                b_after_a += [at - min(a_times) for where, at in arrivals
                              if where == "B" and at is not None]
        log(f"  reply {round_ - args.warmup + 1}/{args.replies}: {len(stream)} deltas")
    closed = collections.Counter(
        f"{r.socket.close_code} {r.socket.close_reason or ''}".strip()
        for r in readers if r.socket.state is not State.OPEN)
    out_of_order = sum(r.out_of_order for r in readers)
    for r in readers:
        r.task.cancel()
        await r.socket.close()

    print(f"## {args.title}\n")
    if args.reader:
        setup = (f"two instances on one PostgreSQL database: A ({writer}) writes the reply; "
                 f"{on_writer} sockets on A, {on_reader} on B ({reader}), one user")
    else:
        setup = f"one instance A ({writer}), {on_writer} sockets of one user"
    print(f"Setup: {setup}. {args.replies} replies (after {args.warmup} not counted) of "
          f"the simulated bot pausing {args.delay_ms} ms between words, each sent by "
          f"`POST /api/conversations/{{id}}/messages` with `Accept: text/event-stream` "
          f"on A; {deltas_counted:,} deltas. Times are the client's, taken as each frame "
          f"is parsed off its socket; one asyncio loop reads every socket.\n")
    print("| what is measured | samples | p50 | p99 | max | min |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(dist_row("fan-out: each socket's arrival − the delta's first arrival at any of the "
                   f"{len(readers)} sockets (the first socket left out)", spread_after_first))
    print(dist_row("fan-out: the last socket's arrival − the first's, per delta", spread_last))
    for where, label in (("A", "a socket on A"), ("B", "a socket on B")):
        if vs_stream.get(where):
            print(dist_row(f"{label}: arrival − the same delta's arrival on the reply's own "
                           "event stream (the POST)", vs_stream[where]))
    if args.reader:
        print(dist_row("across instances: each B socket's arrival − the delta's first "
                       "arrival on A's sockets", b_after_a))
    print()
    print("The reply's own event stream is the generator's direct feed: the streaming POST "
          "is woken by the same call that hands the delta to the event publisher, so "
          "'arrival − event stream' is what the WebSocket path adds to that (negative when "
          "the socket wins). The server puts no time in the frames; no row is an absolute "
          "generator-to-socket time.\n")
    print(f"- deltas missing at some socket: {missing}; out of order: {out_of_order}; "
          f"sockets closed by the server: {sum(closed.values())}"
          + "".join(f" ({n} × code {why})" for why, n in closed.items()))
    print()
    return missing == 0 and out_of_order == 0 and not closed


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("idle")
    p.add_argument("url")
    p.add_argument("pid", type=int)
    p.add_argument("--counts", default="1000,10000")
    p.add_argument("--per-user", type=int, default=10)
    p.add_argument("--hold", type=int, default=25)
    p.add_argument("--ping-interval", type=int, default=30,
                   help="the server's realtime.ping_interval_seconds (for the report)")
    p.add_argument("--concurrency", type=int, default=200)
    p = sub.add_parser("latency")
    p.add_argument("writer")
    p.add_argument("reader", nargs="?")
    p.add_argument("--sockets", type=int, default=10)
    p.add_argument("--replies", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--delay-ms", type=int, default=20,
                   help="the server's bot.simulated_delay_ms (for the report)")
    p.add_argument("--title", default="Delta latency")
    args = parser.parse_args()
    ok = asyncio.run(idle(args) if args.command == "idle" else latency(args))
    sys.stdout.flush()
    if not ok:
        log("ws_bench: FAIL: see the report (refused, closed or missing)")
        sys.exit(1)


main()
