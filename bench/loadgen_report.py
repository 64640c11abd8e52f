#!/usr/bin/env python3
"""Renders the Markdown reports of bench/workload.sh and bench/streams.sh from the JSON
that bench/loadgen printed (and wrk's output, parsed by report.py).

Usage:
  loadgen_report.py workload RESULTS_DIR   RESULTS_DIR/<target>/ holds facts (key=value
                                           lines), seed.json, mix.json, count-*.json,
                                           post32.json, postsolo.json, *.wrk; targets
                                           rust-sqlite, rust-postgres, flask
  loadgen_report.py streams RESULTS_DIR    RESULTS_DIR/<N>/ holds streams.json and facts

Python 3.11 standard library only.
"""
import json
import sys
from pathlib import Path

import report
from report import dispatch, errors as wrk_errors, ms, read_facts, rps

TARGETS = [("rust-sqlite", "Rust, SQLite"), ("rust-postgres", "Rust, PostgreSQL"),
           ("flask", "Flask reference (gunicorn -w 2, SQLite)")]
SUCCESS = {"post": "201"}
REQUESTS = {
    "list": "GET /api/conversations?limit=20",
    "page": "GET /api/conversations/{id}/messages?limit=30",
    "post": "POST /api/conversations/{id}/messages",
    "rename": "PUT /api/conversations/{id}",
}


class Target(report.Target):
    """report.py's target (facts, wrk runs), with a title and loadgen's JSON files."""

    def __init__(self, directory, title):
        super().__init__(directory)
        self.title = title

    def json(self, name):
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None


def mib(kb):
    return f"{int(kb) / 1024:,.1f} MiB" if kb else "–"


def type_errors(kind, figures):
    """The error count, and which statuses made it."""
    if not figures["errors"]:
        return "0"
    ok = SUCCESS.get(kind, "200")
    parts = [f"{status} × {n:,}" for status, n in figures["statuses"].items() if status != ok]
    if figures["transport_errors"]:
        parts.append(f"transport × {figures['transport_errors']:,}")
    return f"{figures['errors']:,} ({', '.join(parts)})"


def lat(figures, key):
    return ms(figures["latency_ms"][key])


def mix_table(target, mix):
    total_weight = sum(mix["ran"].values())
    lines = ["| request | share | count | req/s | p50 | p99 | max | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for kind, figures in mix["types"].items():
        request = f"GET {mix['list_path']}" if kind == "list" else REQUESTS[kind]
        share = mix["ran"][kind] / total_weight * 100
        lines.append(f"| {request} | {share:.0f} % | {figures['count']:,} | {rps(figures['rps'])} | "
                     f"{lat(figures, 'p50')} | {lat(figures, 'p99')} | {lat(figures, 'max')} | "
                     f"{type_errors(kind, figures)} |")
    lines.append(f"| **all** | | **{mix['requests']:,}** | **{rps(mix['rps'])}** | "
                 f"{lat(mix, 'p50')} | {lat(mix, 'p99')} | {lat(mix, 'max')} | {mix['errors']:,} |")
    notes = []
    if mix["dropped"]:
        notes.append(f"Not run here: {', '.join(mix['dropped'])} (no such endpoint); the other "
                     "types kept their weights, so their shares are of what ran.")
    if mix.get("error_examples"):
        notes.append("First errors: " + "; ".join(f"`{e}`" for e in mix["error_examples"]) + ".")
    return lines + ([""] + notes if notes else [])


def workload(results):
    targets = [Target(Path(results) / name, title) for name, title in TARGETS
               if (Path(results) / name).is_dir()]
    out = ["## The mix", ""]
    first = targets[0].json("mix") if targets else None
    if first:
        out += [f"{first['connections']} keep-alive connections (one TCP connection each) for "
                f"{first['duration_s']:g} s; each request is made as a user picked at random among "
                "those no other connection is using at that moment, so no two requests of one "
                "user overlap. Latency runs from sending the request to the end of its body; "
                "every request is kept, so the percentiles are exact. The POSTs use the "
                "simulated bot and plain JSON (201 with the user's message and the reply).", ""]
    for target in targets:
        mix, seed = target.json("mix"), target.json("seed")
        if not mix:
            continue
        out += [f"### {target.title}", "",
                f"Seeded: {seed['users']:,} users × 20 conversations × 20 messages "
                f"({seed['messages_stored']:,} messages, {seed['requests']:,} requests in "
                f"{seed['seconds']:,.0f} s, {seed['requests_per_s']:,.0f} requests/s).", ""]
        out += mix_table(target, mix) + [""]

    if len(targets) > 1:
        out += ["### Side by side", "",
                "| server | users | req/s, all | list p50 | list p99 | POST p50 | POST p99 | errors |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for target in targets:
            mix = target.json("mix")
            if not mix:
                continue
            t = mix["types"]
            cell = lambda kind, key: lat(t[kind], key) if kind in t else "–"
            out.append(f"| {target.title} | {mix['users']:,} | {rps(mix['rps'])} | "
                       f"{cell('list', 'p50')} | {cell('list', 'p99')} | {cell('post', 'p50')} | "
                       f"{cell('post', 'p99')} | {mix['errors']:,} |")
        out += ["", "Flask's list is the seed's whole list (20 conversations with their messages), "
                "the Rust servers' a page of 20 conversations without messages: compare "
                "totals with that in mind."]
        users = {t.name: t.json("mix")["users"] for t in targets if t.json("mix")}
        if "flask" in users and any(users["flask"] < n for n in users.values()):
            out += ["", f"Flask was seeded with {users['flask']:,} users, fewer than the Rust "
                    "servers (BENCH_FLASK_USERS: seeding it is slow). That flatters it: its "
                    "tables have no index on `conversation.user_id` or "
                    "`message.conversation_id`, so each list scans every user's "
                    "conversations and messages, and costs more the more users there are."]
        out.append("")

    rows = []
    for target in targets:
        for run, label in [("mix", "the mix"), ("post32", "POST only, 32 users"),
                           ("postsolo", "POST only, one user")]:
            count, figures = target.json(f"count-{run}"), target.json(run)
            expected = target.get(f"expected_{run}")
            if not count or not figures or expected is None:
                continue
            verdict = "ok" if count["messages"] >= int(expected) else "**FAIL**"
            extra = count["messages"] - int(expected)
            rows.append(f"| {target.title} | {label} | {figures['acknowledged_posts']:,} | "
                        f"{int(expected):,} | {count['messages']:,} ({extra:+,}) | "
                        f"{count['bot_messages_not_complete']:,} | {verdict} |")
    if rows:
        out += ["## Nothing acknowledged is lost", "",
                "After each run `loadgen count` reads every message of the run's users back "
                "through the API (by pages where the server has them). Expected: what was "
                "there before the run plus two messages per POST answered 201.", "",
                "| server | run | POSTs acknowledged | messages expected, at least | stored "
                "(more than expected) | replies not `complete` | |",
                "| --- | --- | ---: | ---: | ---: | ---: | --- |"] + rows + [""]

    rows = []
    for target in targets:
        for run, label in [("post32", "32 users, one connection each"),
                           ("postsolo", "one user on all 32 connections, a conversation each")]:
            figures = target.json(run)
            if not figures:
                continue
            post = figures["types"]["post"]
            rows.append(f"| {target.title} | {label} | {rps(post['rps'])} | {lat(post, 'p50')} | "
                        f"{lat(post, 'p99')} | {lat(post, 'max')} | {type_errors('post', post)} |")
    if rows:
        out += ["## POST only", "",
                "`POST /api/conversations/{id}/messages` (simulated bot, no delay, plain "
                "JSON) on 32 connections. As different users, writes do not wait for each "
                "other; as one user on PostgreSQL, they took turns on the user's row before issue 18. Each connection "
                "posts to conversations no other connection posts to at the same time (a "
                "conversation takes one reply at a time: another is a 409, counted as an "
                "error).", "",
                "| server | connections as | req/s | p50 | p99 | max | errors |",
                "| --- | --- | ---: | ---: | ---: | ---: | --- |"] + rows + [""]

    rows, notes = [], []
    for target in targets:
        test, revalidate = target.run("test"), target.run("revalidate")
        if not test:
            continue
        etag = target.get("etag")
        if etag == "none":
            label = "GET /api/conversations?limit=20, no ETag: plain 200s"
        else:
            label = "GET /api/conversations?limit=20, If-None-Match: its ETag"
            status, size = (target.get("etag_check") or "? ?").split()
            answer = (f"{status} with an empty body" if size == "0"
                      else f"{status} with {size} bytes")
            notes.append(f"{target.title}: the list page's ETag was `{etag}`; with it as "
                         f"If-None-Match, curl got {answer} before the run.")
        for name, run in [("GET /api/test", test), (label, revalidate)]:
            if run:
                rows.append(f"| {target.title} | {name} | {rps(run['rps'])} | {ms(run['p50'])} | "
                            f"{ms(run['p99'])} | {wrk_errors(run)} |")
    if rows:
        out += ["## Revalidation", "",
                "`wrk -t2 -c32 --latency`, one user's session cookie. The list page is "
                "the first user's, asked with the ETag it was last served with.", "",
                "| server | request | req/s | p50 | p99 | errors |",
                "| --- | --- | ---: | ---: | ---: | --- |"] + rows + [""]
        out += [f"- {note}" for note in notes] + ([""] if notes else [])

    out += ["## Memory and CPU", "",
            "Peak RSS is VmHWM (the server process; Flask: master and workers summed), "
            "read after each step (each step's count of the stored messages is in the "
            "next); CPU is the server's user + system time during the mix (on "
            "PostgreSQL, the database's own processes are not counted).", "",
            "| server | peak RSS, seeded | after the mix | after POST, 32 users | "
            "after POST, one user | at the end (wrk) | CPU in the mix | CPU per mix request |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for target in targets:
        mix = target.json("mix")
        cpu = target.get("cpu_mix")
        per = ms(float(cpu) / mix["requests"] * 1000) if cpu and mix and mix["requests"] else "–"
        rss = " | ".join(mib(target.get(f"rss_{step}_kb"))
                         for step in ("seed", "mix", "post32", "postsolo", "final"))
        out.append(f"| {target.title} | {rss} | {cpu or '–'} s | {per} |")
    print("\n".join(out).rstrip())


def streams(results):
    runs = []
    for directory in Path(results).iterdir():
        path = directory / "streams.json"
        if path.exists():
            runs.append((json.loads(path.read_text()), read_facts(directory)))
    runs.sort(key=lambda run: run[0]["n"])
    out = ["| streams | complete | deltas = `done` | stored = `done` | words | added delay p50 | "
           "p99 | max | first delta p50 | p99 | peak RSS | CPU s per 1,000 deltas | wall |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    notes = []
    for r, facts in runs:
        n = r["n"]
        words = (f"{r['word_count_ok']:,}/{r['complete']:,} × {r['words_expected']}"
                 if r.get("words_expected") else "not checked")
        cpu = r.get("cpu_s_per_1000_deltas")
        added, first = r["added_delay_ms"], r["first_delta_ms"]
        out.append(f"| {n:,} | {r['complete']:,}/{n:,} | {r['text_matches']:,} | "
                   f"{r['stored_matches']:,} | {words} | {ms(added['p50'])} | {ms(added['p99'])} | "
                   f"{ms(added['max'])} | {ms(first['p50'])} | {ms(first['p99'])} | "
                   f"{mib(facts.get('rss_kb'))} | {f'{cpu:.3f}' if cpu is not None else '–'} | "
                   f"{r['wall_s']:.2f} s |")
        detail = (f"{n:,} streams: {r['total_deltas']:,} deltas ({r['gaps']:,} gaps), reply words "
                  f"{r['reply_words']['min']:g}–{r['reply_words']['max']:g}"
                  if r["reply_words"]["min"] is not None else f"{n:,} streams: no reply completed")
        detail += (f"; server CPU {r['server_cpu_s']:.2f} s while they ran"
                   if r.get("server_cpu_s") is not None else "")
        detail += f"; prepared in {r['prepare_s']:.1f} s ({r['users']:,} users)"
        if r["failures"]:
            detail += "; failures: " + "; ".join(f"`{k}` × {v}" for k, v in r["failures"].items())
        if facts.get("log_lines", "0") != "0":
            detail += f"; the server logged {facts['log_lines']} warning or error lines"
        notes.append(detail)
    print("\n".join(out + [""] + [f"- {note}" for note in notes]))


def main(argv):
    dispatch(argv, {"workload": workload, "streams": streams}, "loadgen_report.py")


if __name__ == "__main__":
    main(sys.argv)
