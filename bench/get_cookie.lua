-- GET with a cookie: BENCH_COOKIE ("name=value") from the environment
-- (better-auth's session cookie for get-session and its jwt plugin's /token).
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
