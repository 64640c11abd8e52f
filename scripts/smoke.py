#!/usr/bin/env python3
"""A smoke test of a running chatbot server through its public API, standard library only.

    smoke.py --base http://127.0.0.1:5000 [--pid PID] [--expect-request-id]
             [--expect-secure-cookie] [--wait SECONDS]

Waits for GET /api/health, then walks what a user does: readiness, the connection
test, signup, login, a conversation created, listed, talked to, renamed, paged,
deleted, then logout, and checks that the old session cookie is refused afterwards.
Exits 0 when every step answered as README.md says, 1 (naming the step, with the
response) otherwise. --pid makes the wait fail at once if that process dies.

The session cookie is carried by hand: in production it is `Secure`, and Python's
http.cookiejar (like a browser, except for localhost) would not send it over http://.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sys
import time
import urllib.parse

COOKIE_NAME = "session"


class SmokeFailure(Exception):
    pass


class Reply:
    def __init__(self, method: str, path: str, status: int, headers, body: bytes) -> None:
        self.method, self.path, self.status = method, path, status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = ValueError(body[:200])

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def __str__(self) -> str:
        shown = self.raw[:500].decode("utf-8", "replace")
        return f"{self.method} {self.path} -> {self.status} {shown!r}"


class Client:
    """One user's browser: keeps the session cookie, sends it, whatever `Secure` says."""

    def __init__(self, base: str, expect_request_id: bool) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookie: str | None = None
        self.expect_request_id = expect_request_id
        self.set_cookies: list[str] = []

    def send(self, method: str, path: str, body=None, headers: dict | None = None,
             cookie: str | None | bool = True) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
            body = json.dumps(body).encode()
        carried = self.cookie if cookie is True else (cookie or None)
        if carried:
            sent["Cookie"] = carried
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            reply = Reply(method, path, response.status, response.headers, response.read())
        finally:
            connection.close()
        for set_cookie in reply.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(set_cookie)
            pair = set_cookie.split(";", 1)[0].strip()
            name, _, value = pair.partition("=")
            if name != COOKIE_NAME:
                continue
            expired = not value or "max-age=0" in set_cookie.lower().replace(" ", "")
            self.cookie = None if expired else pair
        if self.expect_request_id and not reply.header("X-Request-Id"):
            raise SmokeFailure(f"no X-Request-Id header: {reply}")
        return reply


def expect(condition: bool, what: str, reply: Reply | None = None) -> None:
    if not condition:
        raise SmokeFailure(f"{what}" + (f"\n    response: {reply}" if reply else ""))


def expect_status(reply: Reply, status: int, what: str) -> Reply:
    expect(reply.status == status, f"{what}: expected {status}, got {reply.status}", reply)
    return reply


def expect_error(reply: Reply, status: int, code: str, what: str) -> None:
    expect_status(reply, status, what)
    body = reply.json
    expect(
        isinstance(body, dict) and body.get("code") == code and len(str(body.get("error", ""))) > 5,
        f"{what}: expected the error shape {{error, code: {code!r}}}",
        reply,
    )


def process_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_for_health(client: Client, seconds: float, pid: int | None) -> Reply:
    deadline = time.monotonic() + seconds
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not process_alive(pid):
            raise SmokeFailure(f"the server (pid {pid}) exited before answering /api/health")
        try:
            reply = client.send("GET", "/api/health")
            if reply.status == 200:
                return reply
            last = str(reply)
        except (OSError, http.client.HTTPException) as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.2)
    raise SmokeFailure(f"GET /api/health did not answer 200 within {seconds:.0f} s; last: {last}")


def step(name: str) -> None:
    print(f"  - {name}", flush=True)


def run(args: argparse.Namespace) -> None:
    client = Client(args.base, args.expect_request_id)

    step("GET /api/health")
    health = wait_for_health(client, args.wait, args.pid)
    expect(health.json == {"status": "ok"}, 'health: expected {"status":"ok"}', health)
    expect(
        (health.header("Content-Type") or "").startswith("application/json"),
        "health: expected a JSON content type", health,
    )
    for name, value in [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")]:
        expect(health.header(name) == value, f"health: expected {name}: {value}", health)
    if args.expect_request_id:
        mine = "smoke-" + secrets.token_hex(8)
        echoed = client.send("GET", "/api/health", headers={"X-Request-Id": mine})
        expect(echoed.header("X-Request-Id") == mine,
               f"X-Request-Id {mine} sent, {echoed.header('X-Request-Id')!r} echoed", echoed)

    step("GET /api/ready")
    ready = expect_status(client.send("GET", "/api/ready"), 200, "ready")
    expect(ready.json == {"status": "ready"}, 'ready: expected {"status":"ready"}', ready)

    step("GET /api/test")
    test = expect_status(client.send("GET", "/api/test"), 200, "test")
    expect(test.json == {"message": "Server is running"}, "test: unexpected body", test)

    step("GET /api/conversations without a session: 401")
    expect_error(client.send("GET", "/api/conversations"), 401, "unauthorized", "anonymous list")

    username = "smoke_" + secrets.token_hex(4)
    credentials = {"username": username, "password": "correct horse battery"}
    step(f"POST /api/signup ({username})")
    signup = expect_status(client.send("POST", "/api/signup", credentials), 201, "signup")
    expect(signup.json == {"message": "User created successfully"}, "signup: unexpected body", signup)
    expect(client.cookie is None, "signup must not log in (it set a session cookie)", signup)

    step("POST /api/login")
    login = expect_status(client.send("POST", "/api/login", credentials), 200, "login")
    body = login.json
    expect(
        isinstance(body, dict) and body.get("message") == "Login successful"
        and isinstance(body.get("user"), dict) and body["user"].get("username") == username
        and isinstance(body["user"].get("id"), int) and body["user"]["id"] > 0,
        'login: expected {"message":"Login successful","user":{"id":…,"username":…}}', login,
    )
    expect(client.cookie is not None, f"login: no {COOKIE_NAME!r} cookie was set", login)
    set_cookie = client.set_cookies[-1]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    expect("httponly" in attributes, f"login: the cookie is not HttpOnly: {set_cookie}")
    if args.expect_secure_cookie:
        expect("secure" in attributes,
               f"login: the production cookie must be Secure: {set_cookie}")

    step("POST /api/conversations")
    created = expect_status(
        client.send("POST", "/api/conversations", {"name": "Smoke test"}), 201, "create conversation")
    conversation = created.json
    expect(
        isinstance(conversation, dict) and conversation.get("name") == "Smoke test"
        and isinstance(conversation.get("id"), int)
        and {"created_at", "updated_at"} <= set(conversation),
        "create conversation: expected {id, name, created_at, updated_at}", created,
    )
    cid = conversation["id"]

    step("GET /api/conversations")
    listed = expect_status(client.send("GET", "/api/conversations"), 200, "list")
    expect(
        isinstance(listed.json, list)
        and [(c.get("id"), c.get("messages")) for c in listed.json] == [(cid, [])],
        f"list: expected just conversation {cid}, with no messages", listed,
    )

    step(f"POST /api/conversations/{cid}/messages")
    sent = expect_status(
        client.send("POST", f"/api/conversations/{cid}/messages", {"text": "Hello, bot! How are you?"}),
        201, "send message")
    pair = sent.json
    expect(
        isinstance(pair, list) and len(pair) == 2
        and [m.get("sender") for m in pair] == ["user", "bot"]
        and pair[0].get("text") == "Hello, bot! How are you?"
        and isinstance(pair[1].get("text"), str) and pair[1]["text"].strip() != "",
        "send message: expected [user message, bot reply]", sent,
    )
    message_ids = [m["id"] for m in pair]

    step(f"PUT /api/conversations/{cid}")
    renamed = expect_status(
        client.send("PUT", f"/api/conversations/{cid}", {"name": "Smoke test, renamed"}), 200, "rename")
    expect(
        isinstance(renamed.json, dict) and renamed.json.get("id") == cid
        and renamed.json.get("name") == "Smoke test, renamed",
        "rename: expected the renamed conversation", renamed,
    )

    step(f"GET /api/conversations/{cid}/messages?limit=10")
    page = expect_status(
        client.send("GET", f"/api/conversations/{cid}/messages?limit=10"), 200, "messages page")
    expect(
        isinstance(page.json, dict) and page.json.get("next") is None
        and [m.get("id") for m in page.json.get("messages", [])] == message_ids,
        f'messages page: expected {{"messages": ids {message_ids}, "next": null}}', page,
    )

    step("GET /api/conversations?limit=5")
    conversations = expect_status(client.send("GET", "/api/conversations?limit=5"), 200, "conversation page")
    expect(
        isinstance(conversations.json, dict)
        and [(c.get("id"), c.get("name")) for c in conversations.json.get("conversations", [])]
        == [(cid, "Smoke test, renamed")]
        and conversations.json.get("next") is None,
        "conversation page: expected the renamed conversation and next null", conversations,
    )

    step(f"DELETE /api/conversations/{cid}")
    deleted = expect_status(client.send("DELETE", f"/api/conversations/{cid}"), 204, "delete")
    expect(deleted.raw == b"", "delete: expected an empty body", deleted)
    expect_error(client.send("GET", f"/api/conversations/{cid}/messages?limit=10"), 404, "not_found",
                 "messages of the deleted conversation")
    listed = expect_status(client.send("GET", "/api/conversations"), 200, "list after delete")
    expect(listed.json == [], "list after delete: expected []", listed)

    step("POST /api/logout")
    old_cookie = client.cookie
    logout = expect_status(client.send("POST", "/api/logout"), 200, "logout")
    expect(logout.json == {"message": "Logged out successfully"}, "logout: unexpected body", logout)
    expect(client.cookie is None, "logout: the session cookie was not cleared", logout)

    step("the old session cookie is refused")
    expect_error(client.send("GET", "/api/conversations", cookie=old_cookie), 401, "unauthorized",
                 "the cookie from before logout, replayed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--pid", type=int, help="the server's process, to stop waiting if it dies")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /api/health")
    parser.add_argument("--expect-request-id", action="store_true",
                        help="every response must carry X-Request-Id, and echo the client's")
    parser.add_argument("--expect-secure-cookie", action="store_true",
                        help="the session cookie must be Secure (the production profile)")
    args = parser.parse_args()
    print(f"smoke test of {args.base}", flush=True)
    try:
        run(args)
    except SmokeFailure as failure:
        print(f"SMOKE FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except (OSError, http.client.HTTPException) as error:
        print(f"SMOKE FAILED: the server stopped answering: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)
        return 1
    print("smoke test passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
