-- wrk script: POST a rotating set of bodies read from DIR (files 0.json .. N-1.json)
local dir = os.getenv("BODIES")
local path = os.getenv("GW_PATH") or "/api/v1/lineage"
local bodies = {}
function init(args)
  local i = 0
  while true do
    local f = io.open(dir .. "/" .. i .. ".json", "rb")
    if not f then break end
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    i = i + 1
  end
  counter = math.random(#bodies)
end
function request()
  counter = counter % #bodies + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[counter])
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
