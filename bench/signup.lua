-- POST a sign-up with a fresh address every request to BENCH_PATH
-- (latchkey's /auth/register, better-auth's /api/auth/sign-up/email: same
-- body). Addresses are <BENCH_PREFIX>-<thread>-<n>@example.com, so
-- BENCH_PREFIX must be new for every run. X-CSRFToken when BENCH_CSRF is set.
local n = 0
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  prefix = os.getenv("BENCH_PREFIX")
  path = os.getenv("BENCH_PATH")
  headers = {["Content-Type"] = "application/json"}
  local csrf = os.getenv("BENCH_CSRF")
  if csrf and csrf ~= "" then
    headers["X-CSRFToken"] = csrf
  end
end

function request()
  n = n + 1
  local name = prefix .. "-" .. id .. "-" .. n
  local body = '{"name": "' .. name .. '", "email": "' .. name .. '@example.com", "password": "Tr1cky-Lantern-Owl"}'
  return wrk.format("POST", path, headers, body)
end
