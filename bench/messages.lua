-- POST /api/conversations/{id}/messages, rotating over the conversation ids given in
-- BENCH_CONVERSATION_IDS (comma-separated). The session cookie comes from wrk's -H.
local ids = {}
for id in string.gmatch(os.getenv("BENCH_CONVERSATION_IDS") or "", "%d+") do
  ids[#ids + 1] = id
end
assert(#ids > 0, "BENCH_CONVERSATION_IDS is empty")

wrk.method = "POST"
wrk.body = '{"text": "Could you compare the train and the ferry from Bergen to Flam for a family of four?"}'
wrk.headers["Content-Type"] = "application/json"

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, "/api/conversations/" .. ids[n % #ids + 1] .. "/messages")
end
