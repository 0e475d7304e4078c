-- GET with a Bearer token: BENCH_TOKEN from the environment.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
