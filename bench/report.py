#!/usr/bin/env python3
"""Parses wrk's output and renders the benchmark's Markdown report.

Usage:
  report.py summary WRK_FILE        one line: req/s, p50, p99, errors
  report.py acknowledged WRK_FILE   completed requests minus non-2xx/3xx responses
  report.py render RESULTS_DIR      the report; RESULTS_DIR/<target>/ holds <name>.wrk
                                    files and `facts` (key=value lines) per target:
                                    rust-sqlite, rust-postgres, flask

Python 3.11 standard library only.
"""
import os
import re
import sys
from pathlib import Path

MAIN_ROWS = [
    ("test", "GET /api/test"),
    ("list", "GET /api/conversations"),
    ("messages", "POST /api/conversations/{id}/messages"),
    ("login", "POST /api/login"),
]
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
PAGINATION_TARGET = 2.0


def parse_wrk(path):
    text = Path(path).read_text()

    def find(pattern, default=None):
        match = re.search(pattern, text, re.M)
        return match.group(1) if match else default

    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(find(r"^Requests/sec:\s+([\d.]+)", "0")),
        "p50": to_ms(find(r"^\s+50%\s+(\S+)")),
        "p99": to_ms(find(r"^\s+99%\s+(\S+)")),
        "requests": int(find(r"^\s+(\d+) requests in", "0")),
        "non2xx": int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        "socket": dict(zip(("connect", "read", "write", "timeout"),
                           map(int, socket.groups()))) if socket else {},
    }


def to_ms(value):
    if value is None:
        return None
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", value).groups()
    return float(number) * UNITS_MS[unit]


def ms(value):
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def rps(value):
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def errors(run):
    parts = [f"{run['non2xx']:,} non-2xx"] if run["non2xx"] else []
    parts += [f"{n:,} {kind}" for kind, n in run["socket"].items() if n]
    return ", ".join(parts) or "0"


def summary(run):
    return (f"{rps(run['rps'])} req/s, p50 {ms(run['p50'])}, p99 {ms(run['p99'])}, "
            f"errors {errors(run)}")


def kb(n):
    return f"{int(n) / 1024:,.0f} KB"


def mb(n_kb):
    return f"{int(n_kb) / 1024:,.1f} MB"


def read_facts(directory):
    """The `facts` file in `directory` (key=value lines) as a dict; empty if there is none."""
    facts = directory / "facts"
    lines = facts.read_text().splitlines() if facts.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


class Target:
    """One server's results: RESULTS_DIR/<name>/, its facts and its wrk runs."""

    def __init__(self, directory):
        self.name = directory.name
        self.dir = directory
        self.facts = read_facts(directory)

    def run(self, name):
        path = self.dir / f"{name}.wrk"
        return parse_wrk(path) if path.exists() else None

    def get(self, key, default=None):
        return self.facts.get(key, default)


def main_table(rust, flask):
    head = "| endpoint | rust req/s | p50 | p99 | errors |"
    rule = "| --- | ---: | ---: | ---: | --- |"
    if flask:
        head += " flask req/s | p50 | p99 | errors | ratio (rust/flask req/s) |"
        rule += " ---: | ---: | ---: | --- | ---: |"
    lines = [head, rule]
    for key, label in MAIN_ROWS:
        r = rust.run(key)
        if r is None:
            continue
        row = f"| {label} | {rps(r['rps'])} | {ms(r['p50'])} | {ms(r['p99'])} | {errors(r)} |"
        f = flask.run(key) if flask else None
        if f:
            ratio = f"{r['rps'] / f['rps']:.1f}×" if f["rps"] else "–"
            row += f" {rps(f['rps'])} | {ms(f['p50'])} | {ms(f['p99'])} | {errors(f)} | {ratio} |"
        elif flask:
            row += " – | – | – | – | – |"
        lines.append(row)
    sizes = [f"{t.name} {kb(t.get('list_bytes'))}" for t in (rust, flask) if t and t.get("list_bytes")]
    lines.append("")
    lines.append("GET /api/conversations lists 20 conversations × 20 messages "
                 f"({', '.join(sizes)}).")
    return lines


def login_line(target):
    r = target.run("login")
    hash_s = target.get("hash_seconds")
    if r is None or hash_s is None:
        return None
    cores = len(os.sched_getaffinity(0))
    hash_ms = round(float(hash_s) * 1000)
    limit = cores / hash_ms * 1000
    kind = "werkzeug's scrypt, 2 gunicorn workers" if target.name == "flask" else "bcrypt"
    return (f"- {target.name} ({kind}): {rps(r['rps'])} logins/s (p50 {ms(r['p50'])}, "
            f"errors {errors(r)}); one login alone takes {hash_ms} ms (median of 7 "
            f"sequential logins), so the machine's limit is {cores} cores / {hash_ms} ms = "
            f"{limit:.1f}/s: **{r['rps'] / limit * 100:.0f} %** of it")


def rss_line(target):
    main, final = target.get("rss_main_kb"), target.get("rss_final_kb")
    if not final:
        return None
    what = "gunicorn master + workers" if target.name == "flask" else "the server process"
    line = f"- {target.name} ({what}): {mb(final)} at stop"
    if target.get("paging") == "yes":
        line += f"; {mb(main)} before the pagination data was seeded"
    return line


def stored_line(target):
    stored, ack = target.get("stored"), target.get("acknowledged")
    if stored is None:
        return None
    expected = int(target.get("seeded_messages")) + 2 * int(ack)
    verdict = "OK" if int(stored) >= expected else "**FAIL: messages were acknowledged but not stored**"
    return (f"- {target.name}: {int(ack):,} POSTs acknowledged (201) → at least {expected:,} "
            f"messages expected, {int(stored):,} stored: {verdict}")


def pagination(target):
    if target.get("paging") != "yes":
        return [f"{target.name}: skipped: GET /api/conversations?limit=1 returned the seed's "
                "JSON array, so this binary has no pagination API."]
    big_n = int(target.get("big_conversations"))
    busiest = int(target.get("busiest_messages"))
    rows = [
        ("p_list_bench", "GET /api/conversations?limit=50", "bench: 20 conversations"),
        ("p_list_big", "GET /api/conversations?limit=50", f"big: {big_n:,} conversations"),
        ("p_list_deep", "GET /api/conversations?limit=50&before=…",
         f"big: page {target.get('deep_conversation_page')}"),
        ("p_messages_big", "GET /api/conversations/{id}/messages?limit=50",
         "big: a conversation of 20 messages"),
        ("p_messages_busy", "GET /api/conversations/{id}/messages?limit=50",
         f"bench: a conversation of {busiest:,} messages"),
        ("p_messages_deep", "GET /api/conversations/{id}/messages?limit=50&before=…",
         f"bench: the same, page {target.get('deep_message_page')}"),
    ]
    lines = [f"{target.name}: seeded {target.get('big_summary')}.", "",
             "| request | data | req/s | p50 | p99 | errors |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    runs = {}
    for key, request, data in rows:
        runs[key] = r = target.run(key)
        if r:
            lines.append(f"| {request} | {data} | {rps(r['rps'])} | {ms(r['p50'])} | "
                         f"{ms(r['p99'])} | {errors(r)} |")
    lines += ["", f"p50 ratios, more data / less data (target: within {PAGINATION_TARGET:g}×):"]
    for big, small, label in [
        ("p_list_big", "p_list_bench", f"conversation list, {big_n:,} vs 20 conversations"),
        ("p_list_deep", "p_list_bench", "conversation list, the deep page vs bench's first page"),
        ("p_messages_busy", "p_messages_big", f"messages, {busiest:,} vs 20 in the conversation"),
        ("p_messages_deep", "p_messages_big", "messages, the deep page vs the 20-message conversation"),
    ]:
        if runs.get(big) and runs.get(small) and runs[small]["p50"]:
            ratio = runs[big]["p50"] / runs[small]["p50"]
            verdict = "ok" if ratio <= PAGINATION_TARGET else "**over the target**"
            lines.append(f"- {label}: {ratio:.2f}× {verdict}")
    lines += ["", f"Walks: conversations: {target.get('conversation_walk')}. "
                  f"Messages: {target.get('message_walk')}."]
    return lines


def render(results):
    targets = {d.name: Target(d) for d in sorted(Path(results).iterdir()) if d.is_dir()}
    flask = targets.get("flask")
    rust = [targets[name] for name in ("rust-sqlite", "rust-postgres") if name in targets]
    out = []
    for target in rust:
        title = "SQLite" if target.name == "rust-sqlite" else "PostgreSQL"
        versus = " (flask: its own SQLite file, gunicorn -w 2)" if flask and title == "SQLite" else ""
        out += [f"## {title}{versus}", ""]
        out += main_table(target, flask if title == "SQLite" else None)
        out.append("")
    every = rust + ([flask] if flask else [])
    for title, line in [("Logins", login_line), ("Peak memory (VmHWM)", rss_line),
                        ("Messages stored under load", stored_line)]:
        lines = [l for l in map(line, every) if l]
        if lines:
            out += [f"## {title}", ""] + lines + [""]
    if rust:
        out += ["## Pagination", ""]
        for target in rust:
            out += pagination(target) + [""]
    print("\n".join(out).rstrip())


def acknowledged(run):
    return run["requests"] - run["non2xx"]


def dispatch(argv, commands, script):
    """`script COMMAND PATH`: calls commands[COMMAND](PATH), or exits naming an unknown one."""
    command, path = argv[1], argv[2]
    if command not in commands:
        sys.exit(f"{script}: unknown command {command}; see the docstring")
    commands[command](path)


def main(argv):
    dispatch(argv, {
        "summary": lambda path: print(summary(parse_wrk(path))),
        "acknowledged": lambda path: print(acknowledged(parse_wrk(path))),
        "render": render,
    }, "report.py")


if __name__ == "__main__":
    main(sys.argv)
