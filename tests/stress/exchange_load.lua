-- wrk script of tests/stress/exchange_load.sh: a mixed load against
-- agentid-exchange.  Every connection cycles through a fixed list of requests
-- (valid delegations, invalid tokens, malformed bodies, reads), and the
-- statuses are counted by class so the runner can assert "zero 5xx" exactly.
-- Bodies that need tokens are prepared by the runner in $STRESS_DIR.

local dir = assert(os.getenv("STRESS_DIR"), "STRESS_DIR is not set")

local function slurp(name)
  local f = assert(io.open(dir .. "/" .. name, "r"))
  local s = f:read("*a")
  f:close()
  return s
end

local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local te = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"

-- name, weight, method, path, headers, body
local mix = {
  { "valid delegation", 8, "POST", "/token", form, slurp("body_valid") },
  { "garbage subject token", 2, "POST", "/token", form, slurp("body_garbage") },
  { "forged signature", 2, "POST", "/token", form, slurp("body_forged") },
  { "bad percent-encoding", 1, "POST", "/token", form, te .. "&subject_token=%zz" },
  { "json body", 1, "POST", "/token", { ["Content-Type"] = "application/json" }, '{"a":1}' },
  { "duplicate parameter", 1, "POST", "/token", form, te .. "&" .. te },
  { "unknown grant type", 1, "POST", "/token", form, "grant_type=password&username=x" },
  { "empty body", 1, "POST", "/token", form, "" },
  { "unknown path", 1, "GET", "/nowhere", {}, nil },
  { "healthz", 1, "GET", "/healthz", {}, nil },
  { "introspect", 1, "POST", "/introspect", form, slurp("body_introspect") },
  { "status list", 1, "GET", "/statuslists/0", {}, nil },
}

local requests = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for _, m in ipairs(mix) do
    local req = wrk.format(m[3], m[4], m[5], m[6])
    for _ = 1, m[2] do
      table.insert(requests, req)
    end
  end
  n = 0
  s2xx, s4xx, s500, s503, s5xx, other = 0, 0, 0, 0, 0, 0
end

function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  elseif status == 500 then
    s500 = s500 + 1
  elseif status == 503 then
    s503 = s503 + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { s2xx = 0, s4xx = 0, s500 = 0, s503 = 0, s5xx = 0, other = 0 }
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (th:get(k) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.1f " ..
    "s2xx=%d s4xx=%d s500=%d s503=%d s5xx_other=%d other=%d " ..
    "connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    t.s2xx, t.s4xx, t.s500, t.s503, t.s5xx, t.other,
    e.connect, e.read, e.write, e.timeout))
end
