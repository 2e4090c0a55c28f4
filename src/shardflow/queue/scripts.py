"""The Lua scripts that make each of the consumer's writes one atomic step in Redis.

Redis runs a script alone, start to end, and replicates (and appends to the AOF) its effects
as one transaction: either a message has its result, its marker and its acknowledgement, or
none of them. Time is Redis's own (``TIME``), so leases and rate schedules do not depend on
the consumers' clocks agreeing.
"""

from __future__ import annotations

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

ACK_WITH_RESULTS = _NOW_MS + """
-- KEYS: stream, results stream, done set[, events stream].
-- ARGV: group, marker lifetime ms, events cap (0: none), then per result: id, record, the
-- number n of its events, and n pairs of event type, event record.
local cap = tonumber(ARGV[3])
local written = 0
local i = 4
while i <= #ARGV do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 2])
  if not redis.call('ZSCORE', KEYS[3], id) then
    redis.call('XADD', KEYS[2], '*', 'id', id, 'record', ARGV[i + 1])
    for e = i + 3, i + 1 + 2 * n, 2 do
      if cap > 0 then
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', cap, '*', 'id', id, 'event', ARGV[e],
                   'record', ARGV[e + 1])
      else
        redis.call('XADD', KEYS[4], '*', 'id', id, 'event', ARGV[e], 'record', ARGV[e + 1])
      end
    end
    redis.call('ZADD', KEYS[3], now, id)
    written = written + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  i = i + 3 + 2 * n
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[2]))
return written
"""
"""Write each result, with its events, unless its marker says it was written already;
acknowledge it either way. Returns how many results were written. A result and its events
are one write: a consumer killed before it leaves neither, one retried after a lost reply
(or a slow consumer whose message was taken over) adds neither twice."""

DEAD_LETTER = _NOW_MS + """
-- KEYS: stream, dead-letter stream, done set.
-- ARGV: group, id, data, deliveries, error, consumer.
local written = 0
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'data', ARGV[3], 'deliveries', ARGV[4],
             'error', ARGV[5], 'consumer', ARGV[6])
  redis.call('ZADD', KEYS[3], now, ARGV[2])
  written = 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return written
"""
"""Move a message to the dead-letter stream (unless it has a result already) and acknowledge it."""

ACQUIRE_LEASES = _NOW_MS + """
-- KEYS: one sorted set per limit (member: lease, score: expiry ms).
-- ARGV: lease, lifetime ms, then the size of each limit.
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
end
return 1
"""
"""Take a slot of every limit at once, or none (expired leases -- a dead holder's -- are
dropped first). Returns 1 when taken."""

RENEW_LEASES = _NOW_MS + """
-- KEYS: limit sets. ARGV: lifetime ms, then the lease held in each key (same order).
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
end
return #KEYS
"""

RELEASE_LEASES = """
-- KEYS: limit sets. ARGV: the lease held in each key (same order).
for i, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[i])
end
return #KEYS
"""

RESERVE_START = _NOW_MS + """
-- KEYS: the rate's schedule. ARGV: emission interval ms, burst tolerance ms.
-- The generic cell rate algorithm of limits/rates.py, on Redis's clock, for every consumer.
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX',
           math.ceil(new_tat - now + tonumber(ARGV[2])) + 1000)
local delay = tat - tonumber(ARGV[2]) - now
if delay < 0 then delay = 0 end
return string.format('%.3f', delay)
"""
"""Book the next start of a rate limit; returns the milliseconds to wait before it."""
