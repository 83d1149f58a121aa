-- aetherbus - Apache-2.0
-- wrk script: 100 events per POST /events/ingest (a JSON array), unique
-- ids per request.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
local template = bench_template(100)
function request()
  return bench_request(template, "/events/ingest")
end
