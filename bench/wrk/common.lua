-- aetherbus - Apache-2.0
-- Shared by single.lua and batch100.lua: the benchmark event (ingest form,
-- ~215 bytes), a unique id per event (wrk thread, per-thread counter and
-- index in the batch), 16 tenants as keys, and one machine-readable line at
-- the end that bench/ingest reads:
--   WRK requests=N seconds=S non2xx=N sockerr=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
-- wrk counts a status >= 400 as non-2xx; ingest answers 202 (all accepted),
-- 207 (some rejected; none here: every event is valid), 4xx or 5xx.

local EVENT = '{"id":"#-%03d","name":"ProductViewed","schemaVersion":1,'
  .. '"occurredAt":"2026-02-11T20:10:00.000Z","source":"storefront",'
  .. '"companyId":"c_%d","subjectId":"p1","payload":{"productId":"p1",'
  .. '"sku":"SKU-001","referrer":"search"}}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- The body for `events` events per request (an object for 1, an array
-- otherwise) with "#" where the request's own id goes.
function bench_template(events)
  local parts = {}
  for k = 0, events - 1 do
    parts[#parts + 1] = string.format(EVENT, k, k % 16)
  end
  if events == 1 then
    return parts[1]
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local counter = 0
local run = os.getenv("BENCH_RUN") or tostring(os.time())

function bench_request(template, path)
  counter = counter + 1
  local reqid = string.format("w%s-%d-%09d", run, tid, counter)
  local body = template:gsub("#", reqid)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    "WRK requests=%d seconds=%.3f non2xx=%d sockerr=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
