-- POST /auth/login round-robin over BENCH_USERS accounts
-- (<BENCH_PREFIX>0@example.com ...), so no single account sees more
-- concurrent attempts than the per-account throttle allows.
local n = 0
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  users = tonumber(os.getenv("BENCH_USERS"))
  csrf = os.getenv("BENCH_CSRF")
  prefix = os.getenv("BENCH_PREFIX")
  n = id * 7919
end

function request()
  n = n + 1
  local body = '{"email": "' .. prefix .. (n % users) .. '@example.com", "password": "Tr1cky-Lantern-Owl"}'
  return wrk.format("POST", "/auth/login", {["Content-Type"] = "application/json", ["X-CSRFToken"] = csrf}, body)
end
