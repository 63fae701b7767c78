-- One wrk load for every server in the side-by-side ingest benchmark: each request
-- POSTs a new report in the hospital contract's four fields, with a reportId unique
-- across threads (clinic-central keys on it; the article's Gin server replaces it).
-- WRK_TOKEN, when set, is sent as a bearer token (clinic-central's own route);
-- WRK_PATIENTS patient IDs P0000001.. are cycled (they exist in the loaded clinic).

-- No response() hook: it would make wrk parse every answer in Lua; wrk counts
-- non-2xx/3xx answers itself (summary.errors.status).

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
end

function init(args)
  counter = 0
  patients = tonumber(os.getenv("WRK_PATIENTS") or "2000")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local token = os.getenv("WRK_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"reportId":"%08x-%04x-4%03x-8000-%012x","patientId":"P%07d","painScore":%d,"submitTime":1764300000}',
    thread_no, math.floor(counter / 65536) % 65536, counter % 4096, counter,
    counter % patients + 1, counter % 11)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("WRK_RESULT requests=%d seconds=%.3f p99_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
