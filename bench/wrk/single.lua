-- aetherbus - Apache-2.0
-- wrk script: one event per POST /events/ingest, unique id per request.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
local template = bench_template(1)
function request()
  return bench_request(template, "/events/ingest")
end
