-- Paces wrk at a fixed rate, open loop, as wrk2 does (Debian ships no wrk2).
--
-- Every request has a slot on one schedule; whichever connection is free
-- takes the next slot and waits for it. A slow answer holds up its own
-- connection only, not the requests after it, so bursts are the schedule's,
-- not echoes of earlier answers (a fixed delay() per connection is closed
-- loop: connections answered together wait together and send together).
--
-- Arguments after wrk's "--": requests per second, then "even" (slots evenly
-- spaced, wrk2's model) or "poisson" (exponential gaps: independent clients).
-- wrk's timers tick in whole milliseconds, so slots fire in 1 ms batches.
--
-- done() prints one line: PACED sent=<n> late=<n>, where late counts requests
-- sent more than 1 ms after their slot because every connection was busy
-- (wrk measures latency from the send, so those hide queueing).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clock, paced_timespec *now);
]]

local CLOCK_MONOTONIC = 1
local clock = ffi.new("paced_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local gap_ms
local poisson
local next_slot

-- Globals, read from the main state by done() through thread:get().
sent = 0
late = 0

function init(args)
  local rate = tonumber(args[1])
  if rate == nil or rate <= 0 or (args[2] ~= "even" and args[2] ~= "poisson") then
    error("usage: wrk ... -s paced.lua <url> -- <requests/s> even|poisson")
  end
  gap_ms = 1000 / rate
  poisson = args[2] == "poisson"
  math.randomseed(1)
end

function delay()
  local now = now_ms()
  if next_slot == nil then
    next_slot = now
  elseif poisson then
    next_slot = next_slot - gap_ms * math.log(1 - math.random())
  else
    next_slot = next_slot + gap_ms
  end
  sent = sent + 1
  local wait = next_slot - now
  if wait >= 0 then
    return wait
  end
  if wait < -1 then
    late = late + 1
  end
  return 0
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total_sent, total_late = 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_late = total_late + thread:get("late")
  end
  io.write(string.format("PACED sent=%d late=%d\n", total_sent, total_late))
end
