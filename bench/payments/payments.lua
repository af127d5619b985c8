-- wrk script for bench.payments (load.py): each connection authorizes a payment for a
-- random bound family, and the thread settles every authorized payment next.
-- Responses are told apart by their body ("authorized" / "settled").

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("QQ_TOKEN")
  families = {}
  for line in io.lines(os.getenv("QQ_FAMILIES")) do
    local h, m = line:match("([^,]+),([^,]+)")
    families[#families + 1] = { h, m }
  end
  math.randomseed(tid * 7919 + os.time())
  counter = 0
  pending = {}
  authorized = 0
  settled = 0
  failed = 0
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
end

function request()
  local n = #pending
  if n > 0 then
    local pid = table.remove(pending)
    return wrk.format("POST", "/api/v1/payments/" .. pid .. "/settle", headers,
      '{"amount_fen": 100}')
  end
  counter = counter + 1
  local f = families[math.random(#families)]
  local body = string.format(
    '{"holder_id_number":"%s","member_id_number":"%s","amount_fen":100,"reference":"w%d-%d-%d"}',
    f[1], f[2], tid, os.time(), counter)
  return wrk.format("POST", "/api/v1/payments/authorize", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    local pid = body:match('"payment_id":"([^"]+)"')
    if pid then
      authorized = authorized + 1
      table.insert(pending, pid)
      return
    end
  elseif status == 200 and body:find('"settled"', 1, true) then
    settled = settled + 1
    return
  end
  failed = failed + 1
end

function done(summary, latency, requests)
  local a, s, f = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("authorized")
    s = s + t:get("settled")
    f = f + t:get("failed")
  end
  io.write(string.format(
    'QQ_RESULT {"authorized": %d, "settled": %d, "failed": %d, "requests": %d, ' ..
    '"duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"socket_errors": %d}\n',
    a, s, f, summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
