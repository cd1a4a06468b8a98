-- wrk script of the Tasks API benchmark (driven by bench/runner.py; see bench/__init__.py).
--
-- Two ways to run it:
-- * per-operation timing (BENCH_TIMING=1, one connection per wrk thread: -t N -c N):
--   request() and response() of a thread strictly alternate, so each request is
--   timed exactly (LuaJIT FFI clock_gettime) and tagged with its operation; done()
--   writes every sample for the Python side's per-operation percentiles. Costs
--   about 0.3 ms of generator CPU per request: fine for the paced 100-users mode.
-- * throughput (few threads, many connections each): responses cannot be matched
--   to requests, so only status codes are counted and wrk's own latency histogram
--   is used; about 0.1 ms of generator CPU per request, for the saturation mode.
-- Either way a 201 body's `id` and `user_id` are remembered, so `delete` removes
-- tasks the load created itself.
--
-- Environment (wrk passes no script arguments to setup()/done(), so env it is):
--   BENCH_DATA   Lua file from bench/seed.py: users, tokens, task ids, search terms
--   BENCH_MIX    "op:weight,op:weight,..." (operations below)
--   BENCH_THINK  "min_ms,max_ms" think time between a connection's requests, or "0"
--   BENCH_POOL   optional Lua file of {writer, task id} pairs for `delete_pool`
--   BENCH_OUT    where done() writes the samples
--   BENCH_THREADS  number of wrk threads (to split the delete pool)
--   BENCH_TIMING "1" for per-operation timing (one connection per thread)
--   BENCH_T0_US  CLOCK_MONOTONIC microseconds when wrk was started: each sample says when
--                its request left, so the Python side can leave out the ramp-up

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local t0_us = tonumber(os.getenv("BENCH_T0_US")) or now_us()
local think_min, think_max = 0, 0
do
   local a, b = (os.getenv("BENCH_THINK") or "0"):match("^(%d+),(%d+)$")
   if a then think_min, think_max = tonumber(a), tonumber(b) end
end

-- wrk enables its per-request delay only when the script defines delay().
if think_max > 0 then
   function delay()
      return math.random(think_min, think_max)
   end
end

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_index", counter)
   table.insert(threads, thread)
end

local D, pool, pool_next, pool_stride, users_by_id
local timing = os.getenv("BENCH_TIMING") == "1"
local ops, weights, total_weight = {}, {}, 0
local created = {}      -- tasks this connection created: {user, id}, for `delete`
local pending_op, started_at
local status_counts = {}
-- Globals read back by done() through thread:get(): strings and booleans only. wrk 4.2's
-- thread:get() pops its thread's Lua stack once too often for every table it copies
-- (script_copy_value), and with a few tables per thread wrk crashed in done().
samples_text = ""  -- timing: one "s op status micros started_at" line per response
status_text = ""   -- throughput: one "st status count" line per status
exhausted = false

local JSON = "application/json"

local function headers_for(user)
   return {
      ["Authorization"] = "Bearer " .. user.token,
      ["Content-Type"] = JSON,
      ["Accept"] = JSON,
      -- As behind the TLS-terminating proxy of a real deployment (no HTTPS redirect).
      ["X-Forwarded-Proto"] = "https",
   }
end

local function pick(list)
   return list[math.random(#list)]
end

local function task_body(complete)
   local priorities = { "low", "medium", "high" }
   local categories = { "work", "personal", "shopping", "health", "other" }
   local due = ""
   if math.random() < 0.6 then
      due = string.format(',"due_date":"2027-%02d-%02d"', math.random(1, 12), math.random(1, 28))
   end
   local done = ""
   if complete ~= nil then done = ',"completed":' .. tostring(complete) end
   return string.format(
      '{"title":"Bench task %d","description":"Written by the benchmark.","priority":"%s",'
         .. '"category":"%s"%s%s}',
      math.random(1, 1000000), pick(priorities), pick(categories), due, done)
end

local FILTERS = {
   "?status=pending&sort_by=priority&order=desc",
   "?category=work&sort_by=priority&order=desc",
   "?status=completed&priority=high&sort_by=due_date&order=asc",
   "?status=pending&category=personal&sort_by=priority",
   "?priority=medium&sort_by=title&order=asc",
}

local function put_for(u)
   local complete = nil
   if math.random() < 0.3 then complete = math.random() < 0.5 end
   return "PUT", "/api/" .. u.id .. "/tasks/" .. pick(u.tasks), u, task_body(complete)
end

local function toggle_for(u)
   return "PATCH", "/api/" .. u.id .. "/tasks/" .. pick(u.tasks) .. "/complete", u
end

-- Each builder returns method, path, user, body and extra headers.
local builders = {
   list200 = function()
      local u = pick(D.regular)
      return "GET", "/api/" .. u.id .. "/tasks", u
   end,
   list1000 = function()
      local u = pick(D.big)
      return "GET", "/api/" .. u.id .. "/tasks", u
   end,
   -- The frontend's refetch of an unchanged list, with the ETag of its last answer.
   refetch1000 = function()
      local u = pick(D.big)
      return "GET", "/api/" .. u.id .. "/tasks", u, nil, { ["If-None-Match"] = u.etag }
   end,
   list_filter = function()
      local u = pick(D.regular)
      return "GET", "/api/" .. u.id .. "/tasks" .. pick(FILTERS), u
   end,
   list_search = function()
      local u = pick(D.regular)
      return "GET", "/api/" .. u.id .. "/tasks?search=" .. pick(D.search_terms), u
   end,
   heavy_page = function()
      local u = D.heavy[1]
      local offset = 50 * (math.random(D.heavy_pages) - 1)
      return "GET", "/api/" .. u.id .. "/tasks?limit=50&offset=" .. offset, u
   end,
   heavy_search = function()
      local u = D.heavy[1]
      return "GET", "/api/" .. u.id .. "/tasks?limit=50&search=" .. pick(D.heavy_search_terms), u
   end,
   get = function()
      local u = pick(D.regular)
      return "GET", "/api/" .. u.id .. "/tasks/" .. pick(u.tasks), u
   end,
   create = function()
      local u = pick(D.regular)
      return "POST", "/api/" .. u.id .. "/tasks", u, task_body(nil)
   end,
   create_writer = function()
      local u = pick(D.writers)
      return "POST", "/api/" .. u.id .. "/tasks", u, task_body(nil)
   end,
   put = function() return put_for(pick(D.regular)) end,
   put_writer = function() return put_for(pick(D.writers)) end,
   put_storm = function() return put_for(D.writers[1]) end,
   toggle = function() return toggle_for(pick(D.regular)) end,
   toggle_writer = function() return toggle_for(pick(D.writers)) end,
   toggle_storm = function() return toggle_for(D.writers[1]) end,
   create_storm = function()
      local u = D.writers[1]
      return "POST", "/api/" .. u.id .. "/tasks", u, task_body(nil)
   end,
   profile = function()
      local u = pick(D.regular)
      return "GET", "/api/" .. u.id .. "/profile", u
   end,
   profile_stats = function()
      local u = D.stats[1]
      return "GET", "/api/" .. u.id .. "/profile", u
   end,
   delete_pool = function()
      local item = pool[pool_next]
      if item == nil then
         -- This thread's slice is used up (the pool was sized too small for this
         -- server's rate): stop, and let the repeated delete of the last task (a 404)
         -- show as an error rather than pass silently.
         exhausted = true
         wrk.thread:stop()
         item = pool[pool_next - pool_stride] or pool[1]
      else
         pool_next = pool_next + pool_stride
      end
      local u = D.writers[item[1]]
      return "DELETE", "/api/" .. u.id .. "/tasks/" .. item[2], u
   end,
}

function init(args)
   math.randomseed(thread_index * 7919 + 17)
   D = dofile(os.getenv("BENCH_DATA"))
   users_by_id = {}
   for _, group in ipairs({ D.regular, D.big, D.heavy, D.writers, D.stats }) do
      for _, u in ipairs(group) do users_by_id[u.id] = u end
   end
   for item in (os.getenv("BENCH_MIX") or "list200:1"):gmatch("[^,]+") do
      local op, weight = item:match("^([%w_]+):(%d+)$")
      if op == "delete" or builders[op] then
         total_weight = total_weight + tonumber(weight)
         table.insert(ops, op)
         table.insert(weights, total_weight)
      else
         error("unknown operation in BENCH_MIX: " .. item)
      end
   end
   local pool_file = os.getenv("BENCH_POOL")
   if pool_file and pool_file ~= "" then
      pool = dofile(pool_file)
      pool_next = thread_index
      pool_stride = tonumber(os.getenv("BENCH_THREADS")) or 1
   end
end

local function choose()
   local r = math.random() * total_weight
   for i = 1, #weights do
      if r < weights[i] then return ops[i] end
   end
   return ops[#ops]
end

function request()
   local op = choose()
   local method, path, user, body, extra
   if op == "delete" then
      -- Delete a task this connection created (as a user clears what they added);
      -- with none yet, create one instead.
      local item = table.remove(created)
      if item then
         method, path, user = "DELETE", "/api/" .. item[1].id .. "/tasks/" .. item[2], item[1]
      else
         op = "create"
      end
   end
   if op == "delete_pool" and pool == nil then error("delete_pool needs BENCH_POOL") end
   if not method then
      method, path, user, body, extra = builders[op]()
   end
   pending_op = op
   local headers = headers_for(user)
   for name, value in pairs(extra or {}) do headers[name] = value end
   local req = wrk.format(method, path, headers, body)
   started_at = now_us()
   return req
end

function response(status, headers, body)
   if timing then
      -- ~120 lines per connection a minute when paced: appending stays cheap.
      samples_text = samples_text .. string.format("s %s %d %d %d\n", pending_op, status,
         now_us() - started_at, started_at - t0_us)
   else
      status_counts[status] = (status_counts[status] or 0) + 1
      local lines = {}
      for code, count in pairs(status_counts) do
         lines[#lines + 1] = string.format("st %d %d\n", code, count)
      end
      status_text = table.concat(lines)
   end
   if status == 201 then
      local id = body:match('"id"%s*:%s*"([%x%-]+)"')
      local user = users_by_id[body:match('"user_id"%s*:%s*"([^"]+)"') or ""]
      if id and user then table.insert(created, { user, id }) end
   end
end

function done(summary, latency, requests)
   local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   local e = summary.errors
   out:write(string.format("summary %d %d %d %d %d %d %d %d\n", summary.duration,
      summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
   for _, p in ipairs({ 50, 90, 95, 99, 99.9, 100 }) do
      out:write(string.format("wrk_latency %g %d\n", p, latency:percentile(p)))
   end
   for _, thread in ipairs(threads) do
      out:write(thread:get("samples_text"), thread:get("status_text"))
      if thread:get("exhausted") then out:write("exhausted ", thread:get("thread_index"), "\n") end
   end
   out:close()
end
