#!/usr/bin/env python3
"""The benchmark's API client: seeds data through the public API and reads it back.

Usage (BASE is e.g. http://127.0.0.1:5098; COOKIE is a Cookie header value):
  seed.py small BASE OUTDIR             user `bench`: 20 conversations x 10 messages;
                                        writes OUTDIR/cookie and OUTDIR/conversation_ids,
                                        prints the size of GET /api/conversations in bytes
  seed.py conversations BASE COOKIE N   N new empty conversations; prints their ids,
                                        comma-separated
  seed.py count BASE COOKIE             prints: messages stored, busiest conversation id,
                                        its message count
  seed.py hash-time BASE [TRIES]        median seconds of sequential logins of `bench`
  seed.py has-paging BASE COOKIE        prints yes (a page object) or no (the seed's array)
  seed.py big BASE OUTDIR CONVERSATIONS user `big`, 10 messages per conversation, on
                                        several threads; writes OUTDIR/big_cookie and
                                        OUTDIR/big_conversation_id, prints a summary
  seed.py walk-conversations BASE COOKIE EXPECTED
  seed.py walk-messages BASE COOKIE CONVERSATION EXPECTED
                                        follow `next` to the end, check the pages, print
                                        the path of the middle page, "<its number> of
                                        <pages>", then a summary line

Python 3.11 standard library only.
"""
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path

PASSWORD = "correct horse battery"
MESSAGES_PER_CONVERSATION = 10  # POSTs, each stores the user's message and the bot's reply
PAGE = 50

# 60-100 characters each, so the seeded list weighs what a real one would; one a line in
# texts.txt, which bench/loadgen builds in too.
TEXTS = (Path(__file__).parent / "texts.txt").read_text().splitlines()


def text(n):
    return f"{TEXTS[n % len(TEXTS)]} (#{n})"


class ApiError(Exception):
    pass


class Client:
    """One keep-alive connection; raises ApiError on any unexpected status."""

    def __init__(self, base, cookie=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.cookie = cookie
        self.conn = self._connect()

    def _connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method, path, body=None, expect=(200, 201)):
        headers = {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            response = self._send(method, path, data, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection just as we reused it.
            self.conn.close()
            self.conn = self._connect()
            response = self._send(method, path, data, headers)
        raw = response.read()
        if response.status not in expect:
            raise ApiError(f"{method} {path}: HTTP {response.status}: {raw[:300]!r}")
        return response, raw

    def _send(self, method, path, data, headers):
        self.conn.request(method, path, data, headers)
        return self.conn.getresponse()

    def json(self, method, path, body=None):
        return json.loads(self.call(method, path, body)[1] or b"null")

    def signup_and_login(self, username):
        self.call("POST", "/api/signup", {"username": username, "password": PASSWORD}, (201,))
        self.cookie = self.login(username)
        return self.cookie

    def login(self, username):
        response, _ = self.call(
            "POST", "/api/login", {"username": username, "password": PASSWORD}, (200,)
        )
        cookies = [c.split(";", 1)[0] for c in response.msg.get_all("Set-Cookie") or []]
        if not cookies:
            raise ApiError("POST /api/login: 200 but no Set-Cookie")
        return "; ".join(cookies)

    def new_conversation(self, name):
        return self.json("POST", "/api/conversations", {"name": name})["id"]

    def send(self, conversation_id, n):
        self.call("POST", f"/api/conversations/{conversation_id}/messages", {"text": text(n)}, (201,))


def small(base, outdir):
    client = Client(base)
    cookie = client.signup_and_login("bench")
    ids = []
    for c in range(20):
        ids.append(client.new_conversation(f"Bench conversation {c + 1}"))
        for m in range(MESSAGES_PER_CONVERSATION):
            client.send(ids[-1], c * MESSAGES_PER_CONVERSATION + m)
    Path(outdir, "cookie").write_text(cookie)
    Path(outdir, "conversation_ids").write_text(",".join(map(str, ids)))
    print(len(client.call("GET", "/api/conversations")[1]))


def conversations(base, cookie, n):
    """N new empty conversations of the user with this cookie; prints their ids."""
    client = Client(base, cookie)
    ids = [client.new_conversation(f"Bench target {c + 1}") for c in range(int(n))]
    print(",".join(map(str, ids)))


def count(base, cookie):
    """Prints the messages stored, the busiest conversation and its message count.

    Pages when the server has them: the seed's whole list of a user with a long
    history (hundreds of thousands of messages after a POST run) is tens of megabytes,
    and rendering it would dominate the server's peak memory, which the run measures.
    """
    client = Client(base, cookie)
    if not isinstance(client.json("GET", "/api/conversations?limit=1"), dict):
        conversations = client.json("GET", "/api/conversations")
        sizes = {c["id"]: len(c["messages"]) for c in conversations}
    else:
        sizes = {}
        for conversation in every_item(client, "/api/conversations?limit=100", "conversations"):
            path = f"/api/conversations/{conversation['id']}/messages?limit=100"
            sizes[conversation["id"]] = sum(1 for _ in every_item(client, path, "messages"))
    busiest = max(sizes, key=sizes.get)
    print(sum(sizes.values()), busiest, sizes[busiest])


def every_item(client, path, key):
    """Every item of a paged listing, following `next` cursors."""
    cursor = None
    while True:
        page = client.json("GET", path + (f"&before={cursor}" if cursor else ""))
        yield from page[key]
        cursor = page["next"]
        if cursor is None:
            return


def hash_time(base, tries):
    client = Client(base)
    client.login("bench")  # warm-up: connection, caches
    samples = []
    for _ in range(tries):
        start = time.perf_counter()
        client.login("bench")
        samples.append(time.perf_counter() - start)
    print(f"{statistics.median(samples):.4f}")


def has_paging(base, cookie):
    body = Client(base, cookie).json("GET", "/api/conversations?limit=1")
    if isinstance(body, list):
        print("no")
    elif isinstance(body, dict) and "conversations" in body and "next" in body:
        print("yes")
    else:
        raise ApiError(f"GET /api/conversations?limit=1: unexpected body {str(body)[:200]}")


def big(base, outdir, conversations, threads):
    cookie = Client(base).signup_and_login("big")
    total = conversations * (1 + MESSAGES_PER_CONVERSATION)
    done = [0]
    failures = []
    lock = threading.Lock()
    middle_id = []

    def work(worker):
        try:
            client = Client(base, cookie)
            for c in range(worker, conversations, threads):
                conversation_id = client.new_conversation(f"Big conversation {c + 1}")
                if c == conversations // 2:
                    middle_id.append(conversation_id)
                for m in range(MESSAGES_PER_CONVERSATION):
                    client.send(conversation_id, c * MESSAGES_PER_CONVERSATION + m)
                with lock:
                    done[0] += 1 + MESSAGES_PER_CONVERSATION
                if failures:
                    return
        except Exception as error:  # reported by the main thread
            failures.append(error)

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(threads)]
    for w in workers:
        w.start()
    while alive := [w for w in workers if w.is_alive()]:
        alive[0].join(timeout=5)
        elapsed = time.perf_counter() - start
        print(f"    big: {done[0]:,}/{total:,} requests, {done[0] / elapsed:,.0f}/s",
              file=sys.stderr, flush=True)
    if failures:
        raise failures[0]
    elapsed = time.perf_counter() - start
    Path(outdir, "big_cookie").write_text(cookie)
    Path(outdir, "big_conversation_id").write_text(str(middle_id[0]))
    messages = conversations * MESSAGES_PER_CONVERSATION * 2
    print(f"{conversations:,} conversations and {messages:,} messages, {total:,} requests "
          f"on {threads} threads in {elapsed:.0f} s: {total / elapsed:,.0f} requests/s")


def walk(client, first_path, next_path, key, expected, check_page):
    """Follows `next` from first_path; returns the middle page's path, its number and the
    number of pages, and a summary line."""
    paths, seen, problems = [first_path], [], []
    path = first_path
    while True:
        page = client.json("GET", path)
        items = page[key]
        problems += check_page(items, seen)
        seen += items
        if page["next"] is None:
            break
        path = next_path(page["next"])
        paths.append(path)
        if len(paths) > expected + 2:
            problems.append("`next` never becomes null")
            break
    ids = [item["id"] for item in seen]
    if len(ids) != expected:
        problems.append(f"{len(ids)} items in all, expected {expected}")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} items repeated")
    middle = len(paths) // 2
    summary = f"walked {len(paths)} pages of {PAGE}, {len(ids):,} {key}"
    summary += ("; PROBLEMS: " + "; ".join(dict.fromkeys(problems))) if problems else (
        ", all checks pass")
    return paths[middle], f"{middle + 1} of {len(paths)}", summary


def walk_conversations(base, cookie, expected):
    def newest_first(items, seen):
        keys = [(c["updated_at"], c["id"]) for c in (seen[-1:] + items)]
        return [] if keys == sorted(keys, reverse=True) else ["not newest activity first"]

    def after(cursor):
        return f"/api/conversations?limit={PAGE}&before={urllib.parse.quote(cursor, safe='')}"

    first = f"/api/conversations?limit={PAGE}"
    print(*walk(Client(base, cookie), first, after, "conversations", expected, newest_first),
          sep="\n")


def walk_messages(base, cookie, conversation_id, expected):
    def oldest_first_and_older(items, seen):
        ids = [m["id"] for m in items]
        problems = [] if ids == sorted(ids) else ["a page is not oldest first"]
        if seen and ids and max(ids) >= min(m["id"] for m in seen):
            problems.append("a page is not older than the pages before it")
        return problems

    first = f"/api/conversations/{conversation_id}/messages?limit={PAGE}"
    print(*walk(Client(base, cookie), first, lambda cursor: f"{first}&before={cursor}",
                "messages", expected, oldest_first_and_older), sep="\n")


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "small":
        small(*args)
    elif command == "conversations":
        conversations(*args)
    elif command == "count":
        count(*args)
    elif command == "hash-time":
        hash_time(args[0], int(args[1]) if len(args) > 1 else 7)
    elif command == "has-paging":
        has_paging(*args)
    elif command == "big":
        big(args[0], args[1], int(args[2]), int(os.environ.get("BENCH_SEED_THREADS", "8")))
    elif command == "walk-conversations":
        walk_conversations(args[0], args[1], int(args[2]))
    elif command == "walk-messages":
        walk_messages(args[0], args[1], args[2], int(args[3]))
    else:
        sys.exit(f"seed.py: unknown command {command}; see the docstring")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (ApiError, OSError) as error:
        sys.exit(f"seed.py {sys.argv[1]}: {error}")
