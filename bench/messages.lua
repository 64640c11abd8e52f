-- POST /api/conversations/{id}/messages over the conversation ids given in
-- BENCH_CONVERSATION_IDS (comma-separated), each wrk thread rotating over its own share
-- of them: a conversation takes one message at a time (another while its reply is
-- being written is a 409), so no two requests in flight should name the same one.
-- The session cookie comes from wrk's -H.
local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local ids = {}
local all = {}
for id in string.gmatch(os.getenv("BENCH_CONVERSATION_IDS") or "", "%d+") do
  all[#all + 1] = id
end
assert(#all > 0, "BENCH_CONVERSATION_IDS is empty")

wrk.method = "POST"
wrk.body = '{"text": "Could you compare the train and the ferry from Bergen to Flam for a family of four?"}'
wrk.headers["Content-Type"] = "application/json"

function init(args)
  -- `index` is this thread's number, set by `setup`; bench/run.sh runs wrk -t2.
  for i, id in ipairs(all) do
    if (i - 1) % 2 == index then
      ids[#ids + 1] = id
    end
  end
end

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, "/api/conversations/" .. ids[n % #ids + 1] .. "/messages")
end
