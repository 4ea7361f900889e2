-- wrk script: POSTs new Brevo 'opened' events (BATCH per body: 1 a plain object, more a JSON array),
-- authenticated by the bearer token real Brevo sends; keeps the event ids of every 200 and writes
-- them, with the run's figures, as JSON to REPORT when wrk is done.
local token = os.getenv("BENCH_TOKEN")
local prefix = os.getenv("BENCH_PREFIX")
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "512")
local base_ms = 1700000000000
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  ids = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

local function event()
  counter = counter + 1
  local n = thread_index * 100000000 + counter
  return string.format(
    '{"event":"opened","email":"customer%d@example.com","id":814119,"date":"2023-11-14 22:13:20",'
      .. '"ts_epoch":%d,"message-id":"<%s-%d@smtp-relay.example>","subject":"Welcome",'
      .. '"tags":["welcome"],"tag":"[\\"welcome\\"]"}',
    n % customers, base_ms + n, prefix, n)
end

function request()
  local body
  if batch == 1 then
    body = event()
  else
    local parts = {}
    for i = 1, batch do parts[i] = event() end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    for id in string.gmatch(body, '"(%x+)"') do
      if #id == 32 then ids[#ids + 1] = id end
    end
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_REPORT"), "w")
  local errors = summary.errors
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"p50_us":%d,"p99_us":%d,"ids":[',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(99)))
  local first = true
  for _, thread in ipairs(threads) do
    for _, id in ipairs(thread:get("ids")) do
      out:write((first and '"' or ',"') .. id .. '"')
      first = false
    end
  end
  out:write("]}\n")
  out:close()
end
