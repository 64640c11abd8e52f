#!/usr/bin/env python3
"""How far behind the writing instance a reader on another instance is (issue 14).

Usage: bench/stream_lag.py WRITER_URL READER_URL [replies]
Both servers share one database. For each reply: a client streams it from the writer
(POST with Accept: text/event-stream) while another follows it on the reader from its
start (GET .../events); the lag of delta n is when the reader got it minus when the
writer's client did. Prints the lag's percentiles over every delta of every reply.
"""
import http.client, json, statistics, sys, threading, time, urllib.parse


def connect(url):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)


def request(url, method, path, body=None, headers=None, cookie=None):
    conn = connect(url)
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body, headers)
    return conn.getresponse()


def events(response):
    """(name, id, data, arrival time) of each event of a stream, as they arrive."""
    name, ident, data = None, None, None
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            ident = int(line[4:])
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and name:
            yield name, ident, data, time.perf_counter()
            name, ident, data = None, None, None


def main():
    writer, reader = sys.argv[1], sys.argv[2]
    replies = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    user = {"username": f"lag{int(time.time() * 1000)}", "password": "correct horse"}
    request(writer, "POST", "/api/signup", user).read()
    login = request(writer, "POST", "/api/login", user)
    login.read()
    cookie = login.getheader("Set-Cookie").split(";")[0]
    lags = []
    for _ in range(replies):
        created = request(writer, "POST", "/api/conversations", {"name": "lag"}, cookie=cookie)
        conversation = json.loads(created.read())["id"]
        stream = request(writer, "POST", f"/api/conversations/{conversation}/messages",
                         {"text": "tell me a long story about the lighthouses of the north"},
                         {"Accept": "text/event-stream"}, cookie)
        written = {}
        it = events(stream)
        for name, ident, data, _ in it:
            if name == "reply":
                reply = data["id"]
                break
        followed = {}

        def follow():
            response = request(reader, "GET",
                               f"/api/conversations/{conversation}/messages/{reply}/events",
                               headers={"Accept": "text/event-stream"}, cookie=cookie)
            for name, ident, _, at in events(response):
                if name == "delta":
                    followed[ident] = at

        follower = threading.Thread(target=follow)
        follower.start()
        for name, ident, _, at in it:
            if name == "delta":
                written[ident] = at
        follower.join()
        lags += [(followed[n] - written[n]) * 1000 for n in written if n in followed]
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{len(lags)} deltas over {replies} replies: reader lag p50 {pick(0.5):.0f} ms, "
          f"p95 {pick(0.95):.0f} ms, p99 {pick(0.99):.0f} ms, max {lags[-1]:.0f} ms")


main()
