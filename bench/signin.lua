-- POST a sign-in round-robin over BENCH_USERS accounts
-- (<BENCH_PREFIX>0@example.com ...) to BENCH_PATH, with the X-CSRFToken
-- header when BENCH_CSRF is set: latchkey's /auth/login and better-auth's
-- /api/auth/sign-in/email take the same body. login.lua is this for
-- latchkey alone.
local n = 0
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  users = tonumber(os.getenv("BENCH_USERS"))
  prefix = os.getenv("BENCH_PREFIX")
  path = os.getenv("BENCH_PATH")
  headers = {["Content-Type"] = "application/json"}
  local csrf = os.getenv("BENCH_CSRF")
  if csrf and csrf ~= "" then
    headers["X-CSRFToken"] = csrf
  end
  n = id * 7919
end

function request()
  n = n + 1
  local body = '{"email": "' .. prefix .. (n % users) .. '@example.com", "password": "Tr1cky-Lantern-Owl"}'
  return wrk.format("POST", path, headers, body)
end
