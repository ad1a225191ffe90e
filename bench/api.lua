-- wrk script for the API scenarios of bench/api-wrk.sh (BENCHMARKS.md, "wrk").
-- Environment: KEY (an API key), SCENARIO (ping | get-num | search-word | search-fields |
-- create | comment), IDS (file of ticket ids, one per line; for comment), TICKETS (highest
-- ticket number; for get-num).
local key = os.getenv("KEY")
local scenario = os.getenv("SCENARIO")
local tickets = tonumber(os.getenv("TICKETS") or "10000")
local ids = {}
local counter = 0

local paths = {
  ["ping"] = "/api/app/ping/v1",
  ["get-num"] = "/api/app/get_ticket/v1",
  ["search-word"] = "/api/app/search_tickets/v1",
  ["search-fields"] = "/api/app/search_tickets/v1",
  ["create"] = "/api/app/create_ticket/v1",
  ["comment"] = "/api/app/add_ticket_change/v1",
}
-- Not the words the search scenarios look for ("latency", "disk full"), so creates leave
-- the searches' result sizes alone.
local words = {"network", "queue", "backup", "certificate", "deploy",
  "memory", "cpu", "timeout", "replica", "cache", "index", "login", "report"}

-- Tags a bench server has (crates/docket/src/bench/gen.rs, TAGS).
local tags = {"important", "flag"}

function init(args)
  counter = math.random(1, 1000000000)
  local file = os.getenv("IDS")
  if file and file ~= "" then
    for line in io.lines(file) do ids[#ids + 1] = line end
  end
end

local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = key}

local function body()
  counter = counter + 1
  if scenario == "ping" then
    return "{}"
  elseif scenario == "get-num" then
    return string.format('{"num":%d}', math.random(1, tickets))
  elseif scenario == "search-word" then
    return '{"query":"latency","limit":50,"compact":true}'
  elseif scenario == "search-fields" then
    return '{"query":"status:open tags:important","limit":50,"compact":true}'
  elseif scenario == "create" then
    local w1 = words[math.random(#words)]
    local w2 = words[math.random(#words)]
    return string.format('{"subject":"Alert %d: %s %s on host-%d","body":"The %s check '
      .. 'failed on host-%d.\\n\\nSeen at step %d; the %s is over its threshold.",'
      .. '"type":"issue","status":"open","tags":["%s"]}',
      counter, w1, w2, counter % 97, w1, counter % 97, counter, w2, tags[counter % 2 + 1])
  elseif scenario == "comment" then
    local id = ids[math.random(#ids)]
    return string.format('{"id":"%s","change":{"type":"comment","body":"Looked at it again (%d); '
      .. 'the %s is back to normal."}}', id, counter, words[math.random(#words)])
  end
end

function request()
  return wrk.format("POST", paths[scenario], headers, body())
end

local bad = 0
function response(status, hdrs, resp)
  if status ~= 200 or not string.find(string.sub(resp, 1, 40), '"code":0', 1, true) then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("bad reply: " .. status .. " " .. string.sub(resp, 1, 200) .. "\n") end
  end
end
