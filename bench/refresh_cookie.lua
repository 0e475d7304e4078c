-- POST /auth/token/refresh/ with LATCHKEY_REFRESH_COOKIE=true: the refresh
-- token goes in the latchkey_refresh cookie (body {}), and the one the
-- response sets (Set-Cookie) is used next, as a browser does. BENCH_TOKENS
-- names a file of refresh tokens, one per line; each wrk thread takes its
-- share. refresh.lua is the same for tokens in the JSON body.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
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
    {["Content-Type"] = "application/json", ["X-CSRFToken"] = csrf,
     ["Cookie"] = "latchkey_refresh=" .. token},
    "{}")
end

function response(status, headers, body)
  for name, value in pairs(headers) do
    if name:lower() == "set-cookie" then
      local token = value:match("latchkey_refresh=([^;]+)")
      if token and token ~= "" then
        table.insert(pool, token)
      end
    end
  end
end
