-- A sign-in flood that times each answer by its status: run with as many
-- wrk threads as connections (-t N -c N), so each thread has one connection
-- and a response() is the answer to that thread's last request(). Sign-ins
-- round-robin over BENCH_USERS accounts (<BENCH_PREFIX>0@example.com ...)
-- to BENCH_PATH, X-CSRFToken when BENCH_CSRF is set. done() prints one line:
--   FLOOD ok=<2xx count> p50=<ms> p99=<ms> rejected=<503 count> other=<count> pending=<count>
-- the percentiles over the 2xx answers only (wrk's own histogram mixes in
-- the 503s a full queue answers at once), plus the sign-ins still unanswered
-- when wrk stops, each counted at its age then (a lower bound of its
-- latency: a server slower than the run would otherwise show only its
-- fastest answers), if older than the slowest 503 of the run (a younger one
-- may be a refusal on its way, not a queued sign-in).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
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
  ok = {}
  rejected = 0
  rejected_max = 0
  other = 0
  started = nil
end

function request()
  n = n + 1
  started = now_ms()
  local body = '{"email": "' .. prefix .. (n % users) .. '@example.com", "password": "Tr1cky-Lantern-Owl"}'
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if started == nil then
    return
  end
  local ms = now_ms() - started
  started = nil
  if status >= 200 and status < 300 then
    table.insert(ok, ms)
  elseif status == 503 then
    rejected = rejected + 1
    if ms > rejected_max then
      rejected_max = ms
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local all, rej, oth, pending, rej_max = {}, 0, 0, 0, 0
  local now = now_ms()
  for _, t in ipairs(threads) do
    for _, ms in ipairs(t:get("ok")) do
      table.insert(all, ms)
    end
    rej = rej + t:get("rejected")
    oth = oth + t:get("other")
    rej_max = math.max(rej_max, t:get("rejected_max"))
  end
  for _, t in ipairs(threads) do
    local started = t:get("started")
    if started and now - started > rej_max then
      table.insert(all, now - started)
      pending = pending + 1
    end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then
      return -1
    end
    return all[math.max(1, math.ceil(#all * p))]
  end
  io.write(string.format("FLOOD ok=%d p50=%.2f p99=%.2f rejected=%d other=%d pending=%d\n",
    #all - pending, pct(0.5), pct(0.99), rej, oth, pending))
end
