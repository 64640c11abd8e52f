#!/usr/bin/env python3
"""Median login time for unknown users vs wrong passwords (issue 4: timing-safe login).

Usage: bench/login_timing.py [base_url] [tries]   (server running, rate limits off)
"""
import http.client, json, statistics, sys, time, urllib.parse

base = urllib.parse.urlparse(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000")
tries = int(sys.argv[2]) if len(sys.argv) > 2 else 100
conn = http.client.HTTPConnection(base.hostname, base.port)

def post(path, body):
    start = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status, time.perf_counter() - start

post("/api/signup", {"username": "timing", "password": "the right password"})
samples = {"unknown user": [], "wrong password": []}
for i in range(tries):  # interleaved, so drift in machine load hits both alike
    status, t = post("/api/login", {"username": f"ghost{i}", "password": "the right password"})
    assert status == 401, status
    samples["unknown user"].append(t)
    status, t = post("/api/login", {"username": "timing", "password": f"wrong password {i}"})
    assert status == 401, status
    samples["wrong password"].append(t)
medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
for k, v in medians.items():
    print(f"{k:15} median {v:7.1f} ms over {tries} tries")
a, b = medians.values()
print(f"difference {abs(a - b) / max(a, b) * 100:.1f}%")
