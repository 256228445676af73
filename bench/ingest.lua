-- wrk script: signed ~12 KB issue_comment deliveries, each with its own X-GitHub-Delivery.
-- The body and its signature come from bench/ingest-wrk.sh (environment variables).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.body = io.open(os.getenv("INGEST_BODY"), "rb"):read("*a")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "issue_comment"
  wrk.headers["X-Hub-Signature-256"] = os.getenv("INGEST_SIGNATURE")
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("wrk-%d-%d-%d", tid, counter, os.time())
  return wrk.format()
end
