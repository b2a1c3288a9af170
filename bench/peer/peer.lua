-- The wrk script of the peer benchmark (bench/peer, docs/performance.md).
--
--   wrk -t2 -c50 -d15s -s peer.lua URL -- OP FLAVOR TAG TOKENS_FILE IDS_FILE
--
-- OP is create, get or list; FLAVOR is shoal or pb (which paths to use);
-- TAG is three digits that differ between every create run against one
-- server; TOKENS_FILE holds one bearer token a line (requests rotate through
-- them); IDS_FILE holds the ids that get picks from at random.
--
-- done() prints one line "PEER {json}" with the counts and latency
-- percentiles, and "PEERBAD status body" for the first non-2xx answer.

local threads = {}

-- setup runs in the main Lua state, once per thread, before init.
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local paths = {
  shoal = {
    create = "/v1/leads",
    get = "/v1/leads/",
    list = "/v1/leads?limit=50",
  },
  pb = {
    create = "/api/collections/leads/records",
    get = "/api/collections/leads/records/",
    list = "/api/collections/leads/records?sort=-created&perPage=50&skipTotal=1",
  },
}

local function lines(path)
  local t = {}
  if path ~= nil and path ~= "" and path ~= "-" then
    for l in io.lines(path) do
      if l ~= "" then t[#t + 1] = l end
    end
  end
  return t
end

local op, p, tag, tokens, ids, n

function init(args)
  op, tag = args[1], args[3]
  p = paths[args[2]]
  tokens = lines(args[4])
  ids = lines(args[5])
  n = 0
  non2xx = 0
  firstbad = ""
  math.randomseed(tid * 7919)
end

-- leadBody must stay byte-for-byte the same as leadBody in main.go, which
-- seeds the rows. Every value is unique and of fixed width: TAG (3 digits),
-- the thread (2) and a per-thread counter (7). Fixed width matters because
-- Shoal's duplicate check drops separators: "1-23" and "12-3" would collide.
local function leadBody(u)
  return string.format(
    '{"name":"Bench lead %s","company":"Bench %s Co","phone":"1%s",' ..
    '"email":"lead%s@bench.example.com","source":"web form","region":"杭州",' ..
    '"industry":"software","notes":"Asked for a demo after the webinar.",' ..
    '"tags":["web","bench"]}', u, u, u, u)
end

function request()
  n = n + 1
  local h = { ["Authorization"] = "Bearer " .. tokens[(n + tid) % #tokens + 1] }
  if op == "create" then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", p.create, h, leadBody(string.format("%s%02d%07d", tag, tid, n)))
  elseif op == "get" then
    return wrk.format("GET", p.get .. ids[math.random(#ids)], h)
  end
  return wrk.format("GET", p.list, h)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if firstbad == "" then
      firstbad = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    local f = t:get("firstbad")
    if first == "" and f ~= nil and f ~= "" then first = f end
  end
  local e = summary.errors
  io.write(string.format(
    'PEER {"requests":%d,"durationUs":%d,"p50Us":%.0f,"p99Us":%.0f,"non2xx":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.timeout))
  if first ~= "" then
    io.write("PEERBAD " .. first:gsub("%c", " ") .. "\n")
  end
end
