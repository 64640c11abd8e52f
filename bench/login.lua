-- POST /api/login for the seeded user `bench`, with the right password (see seed.py).
wrk.method = "POST"
wrk.body = '{"username": "bench", "password": "correct horse battery"}'
wrk.headers["Content-Type"] = "application/json"
