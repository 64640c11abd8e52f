"""Helpers of scripts/fuzz.sh, run with the fuzzing virtualenv's Python (it has requests).

    fuzz.py wait BASE SECONDS          wait until BASE/api/ready answers 200
    fuzz.py fixtures BASE USER         sign USER and the login example's user up, log
                                       USER in, start conversations; prints the session
                                       cookie's value
    fuzz.py login BASE USER            log in again (another session); prints its cookie
    fuzz.py account BASE USER          sign USER up with the password of the document's
                                       examples that confirm a password (changing it,
                                       deleting the account), log in a few times;
                                       prints the last session's cookie
    fuzz.py session BASE COOKIE        fail unless the cookie still opens the session
    fuzz.py report MIN_CASES NDJSON... count the cases and statuses the runs recorded,
                                       per operation; fail on a run that fuzzed little
                                       or tested the logged-in API without a session
"""

from __future__ import annotations

import collections
import json
import sys
import time

import requests

PASSWORD = "fuzzing password"
COOKIE_NAME = "session"
# A few conversations with messages, so that the `{id}` operations have real ids to hit
# besides the ones the fuzzer's own POST /api/conversations make.
FIXTURE_CONVERSATIONS = 3
# Sessions an account of `fuzz.py account` opens.
ACCOUNT_SESSIONS = 5
# Operations whose success needs a secret no request gives the fuzzer: the token of a
# mailed link, the handle of another live session of the user, or the content hash in
# a web client asset's name. They are fuzzed all the same (every refusal checked);
# tests/api/accounts.rs and tests/api/web_client.rs make them succeed.
NEEDS_A_SECRET = {
    "POST /api/email/verify",
    "POST /api/password/reset",
    "DELETE /api/me/sessions/{id}",
    "GET /assets/{name}",
    "HEAD /assets/{name}",
}


def fail(message: str) -> None:
    print(f"FUZZ FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def wait(base: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    fail(f"the server at {base} did not get ready within {seconds} s")


def log_in(base: str, user: str) -> requests.Session:
    http = requests.Session()
    reply = http.post(f"{base}/api/login", json={"username": user, "password": PASSWORD}, timeout=30)
    if reply.status_code != 200 or COOKIE_NAME not in http.cookies:
        fail(f"login as {user}: {reply.status_code} {reply.text}")
    return http


def fixtures(base: str, user: str) -> None:
    reply = requests.post(f"{base}/api/signup", json={"username": user, "password": PASSWORD}, timeout=30)
    if reply.status_code != 201:
        fail(f"signup of {user}: {reply.status_code} {reply.text}")
    # The account of the document's login example, so that the example logs in
    # whatever order the fuzzer takes the operations in.
    document = requests.get(f"{base}/api/openapi.json", timeout=30).json()
    example = document["components"]["schemas"]["Credentials"]["examples"][0]
    reply = requests.post(f"{base}/api/signup", json=example, timeout=30)
    if reply.status_code != 201:
        fail(f"signup of the login example {example['username']}: {reply.status_code} {reply.text}")
    http = log_in(base, user)
    for index in range(FIXTURE_CONVERSATIONS):
        created = http.post(f"{base}/api/conversations", json={"name": f"fixture {index + 1}"}, timeout=30)
        if created.status_code != 201:
            fail(f"creating a conversation: {created.status_code} {created.text}")
        conversation = created.json()["id"]
        sent = http.post(f"{base}/api/conversations/{conversation}/messages", json={"text": "hello"}, timeout=30)
        if sent.status_code != 201:
            fail(f"sending a message: {sent.status_code} {sent.text}")
    print(http.cookies[COOKIE_NAME])


def login(base: str, user: str) -> None:
    print(log_in(base, user).cookies[COOKIE_NAME])


def account(base: str, user: str) -> None:
    # The password the examples of PasswordChange and PasswordConfirmation give, so that
    # fuzzing those operations with their examples succeeds once.
    document = requests.get(f"{base}/api/openapi.json", timeout=30).json()
    password = document["components"]["schemas"]["PasswordConfirmation"]["examples"][0]["password"]
    reply = requests.post(f"{base}/api/signup", json={"username": user, "password": password}, timeout=30)
    if reply.status_code != 201:
        fail(f"signup of {user}: {reply.status_code} {reply.text}")
    http = None
    # Other sessions of the user, for DELETE /api/me/sessions/{id} to end.
    for _ in range(ACCOUNT_SESSIONS):
        http = requests.Session()
        login = http.post(f"{base}/api/login", json={"username": user, "password": password}, timeout=30)
        if login.status_code != 200:
            fail(f"login as {user}: {login.status_code} {login.text}")
    print(http.cookies[COOKIE_NAME])


def session(base: str, cookie: str) -> None:
    reply = requests.get(f"{base}/api/conversations?limit=1", cookies={COOKIE_NAME: cookie}, timeout=30)
    if reply.status_code != 200:
        fail(
            f"the fuzzing session no longer works ({reply.status_code}): the run lost its login "
            "midway, so later operations were only fuzzed logged out"
        )


def report(min_cases: str, paths: list[str]) -> None:
    """Prints what the runs sent and got; fails when they tested too little."""
    cases = 0
    by_phase: collections.Counter[str] = collections.Counter()
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    running_time = 0.0
    for path in paths:
        with open(path, encoding="utf-8") as events:
            for line in events:
                event = json.loads(line)
                if "EngineFinished" in event:
                    running_time += event["EngineFinished"]["running_time"]
                finished = event.get("ScenarioFinished")
                if not finished:
                    continue
                recorder = finished["recorder"]
                for case_id, case in recorder.get("cases", {}).items():
                    cases += 1
                    by_phase[finished["phase"]] += 1
                    value = case["value"]
                    interaction = recorder.get("interactions", {}).get(case_id)
                    response = interaction and interaction.get("response")
                    if response:
                        statuses[f"{value['method']} {value['path']}"][response["status_code"]] += 1
    phases = ", ".join(f"{phase} {count}" for phase, count in sorted(by_phase.items()))
    print(f"fuzz: {cases} cases ({phases}) in {running_time:.0f} s of fuzzing")
    # Methods a path does not take (check `unsupported_method`) only ever get 405.
    undocumented = {op: counts for op, counts in statuses.items() if set(counts) == {405}}
    documented = {op: counts for op, counts in statuses.items() if op not in undocumented}
    width = max(map(len, documented), default=0)
    for operation in sorted(documented, key=lambda label: (label.split()[1], label.split()[0])):
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(documented[operation].items()))
        print(f"  {operation:<{width}}  {counts}")
    if undocumented:
        total = sum(sum(counts.values()) for counts in undocumented.values())
        print(f"  methods the paths do not take: {total} cases, {len(undocumented)} pairs, all 405")
    if cases < int(min_cases):
        fail(f"only {cases} cases were generated, fewer than the {min_cases} this run must make")
    # Every operation must have been answered with a success at least once: one that
    # only ever got 401s was fuzzed without a session, one that only got 404s never hit
    # a real id, and neither tested much.
    starved = [
        op
        for op, counts in documented.items()
        if not any(200 <= s < 300 for s in counts) and op not in NEEDS_A_SECRET
    ]
    if starved:
        fail(f"never answered with a success: {', '.join(sorted(starved))}")


def main() -> None:
    command, *args = sys.argv[1:] or ["help"]
    if command == "wait":
        wait(*args)
    elif command == "fixtures":
        fixtures(*args)
    elif command == "login":
        login(*args)
    elif command == "account":
        account(*args)
    elif command == "session":
        session(*args)
    elif command == "report":
        report(args[0], args[1:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
