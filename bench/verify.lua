-- POST /auth/token/verify/ with a live access token and a CSRF header.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-CSRFToken"] = os.getenv("BENCH_CSRF")
wrk.body = '{"token": "' .. os.getenv("BENCH_TOKEN") .. '"}'
