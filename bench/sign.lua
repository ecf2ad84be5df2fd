-- wrk script: replays webhooks that bench/payloads.py signed beforehand (wrk's Lua has no HMAC).
--
-- Usage: wrk ... -s bench/sign.lua http://127.0.0.1:PORT/webhooks/generic -- REQUESTS_FILE
-- REQUESTS_FILE has one request a line: webhook-id TAB webhook-timestamp TAB webhook-signature
-- TAB body (compact JSON, so no tab or newline inside). Each wrk thread loads its own stripe of
-- the file (line k goes to thread k mod threads), so threads never send the same webhook.
-- (wrk calls request() once before the run to check it, so the first line is never sent.)
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (in µs).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local prepared = {}
local count = 0
local position = 0
wraps = 0  -- global: read by done() through thread:get

function init(args)
  local path = args[1]
  if path == nil then
    error("sign.lua: give the requests file after --")
  end
  local stride = tonumber(args[2] or "1")
  local index = thread_index or 0
  local target = wrk.path
  if target == nil or target == "" then target = "/webhooks/generic" end
  local line_number = 0
  for line in io.lines(path) do
    if line_number % stride == index then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      if body == nil then error("sign.lua: malformed line " .. line_number) end
      count = count + 1
      prepared[count] = wrk.format("POST", target, {
        ["Host"] = "127.0.0.1",
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body)
    end
    line_number = line_number + 1
  end
  if count == 0 then error("sign.lua: no requests for thread " .. index) end
end

function request()
  position = position + 1
  if position > count then
    position = 1
    wraps = wraps + 1
  end
  return prepared[position]
end

function done(summary, latency, requests)
  local total_wraps = 0
  for _, thread in ipairs(threads) do
    total_wraps = total_wraps + (tonumber(thread:get("wraps")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"wraps":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f,"stdev":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, total_wraps,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, latency.stdev))
end
