-- wrk script: GETs the view of customers spread over BENCH_CUSTOMERS (`customer<n>@example.com`),
-- BENCH_PATH the path up to the address, authenticated by the API's bearer token; writes the run's
-- figures as JSON to BENCH_REPORT when wrk is done (the format of events.lua, without ids).
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH") or "/api/customers/"
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "100000")
-- a prime stride: customers made only of 2s and 5s (100,000) are all visited before one repeats
local stride = 7919

function init(args)
  counter = 0
  wrk.method = "GET"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  return wrk.format(nil, path .. "customer" .. ((counter * stride) % customers) .. "@example.com")
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_REPORT"), "w")
  local errors = summary.errors
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(99)))
  out:close()
end
