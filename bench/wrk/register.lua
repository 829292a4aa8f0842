-- POST /api/users/register with a fresh email per request, for wrk -s.
-- wrk runs one Lua state per thread: setup() numbers the threads, init() seeds each one.
tid = 0
local counter = 0

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end

function init(args)
  math.randomseed(os.time() * 100 + tid)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"load%d_%d_%d@example.com","password":"password123","full_name":"Load User","phone_number":"+79991234567"}',
    tid, counter, math.random(1, 1000000000))
  return wrk.format("POST", "/api/users/register", {["Content-Type"] = "application/json"}, body)
end
