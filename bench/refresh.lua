-- POST /auth/token/refresh/ as real clients do: every refresh token is used
-- once, and the one each response returns is used next. BENCH_TOKENS names a
-- file of refresh tokens, one per line; each wrk thread takes its share.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  pool = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if i % tonumber(os.getenv("BENCH_THREADS")) == id then
      table.insert(pool, line)
    end
    i = i + 1
  end
  csrf = os.getenv("BENCH_CSRF")
end

function request()
  local token = table.remove(pool)
  if token == nil then
    -- No spare token: a 404 here shows up as an error and voids the run.
    return wrk.format("GET", "/bench-pool-empty")
  end
  return wrk.format("POST", "/auth/token/refresh/",
    {["Content-Type"] = "application/json", ["X-CSRFToken"] = csrf},
    '{"refresh": "' .. token .. '"}')
end

function response(status, headers, body)
  local token = body:match('"refresh"%s*:%s*"([^"]+)"')
  if token then
    table.insert(pool, token)
  end
end
