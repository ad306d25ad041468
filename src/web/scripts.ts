/**
 * The web runtime's Redis scripts (store Redis), run by LuaScript (src/redis/script.ts): the session's
 * conditional write (session.ts) and the login throttle's counters (login-throttle.ts). Each is one atomic
 * round trip and opens with its KEYS/ARGV/return contract.
 */
import { LuaScript, REDIS_NOW_MS } from '../redis/script.js'

/**
 * session-set-1: sets fields of a session and renews its TTL, only when the session still exists (it may
 * have expired or been destroyed since the request read its cookie).
 * KEYS[1] the session hash
 * ARGV[1] TTL (ms), ARGV[2..] field, value, field, value...
 * Returns 1 set, 0 the session is gone.
 */
const SESSION_SET = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`

/**
 * login-attempt-2: counts one login attempt on every counter, or refuses it when one is at its limit. The
 * windows follow the Redis clock (TIME), so every web server judges them alike, whatever its own clock says.
 * KEYS[1] the account's counter, KEYS[2] the address's; each a hash { n = failures, reset = when its window
 * ends (ms, Redis clock) }, expiring with its window
 * ARGV[1] window (ms), ARGV[1 + i] the limit of KEYS[i] (0: no limit)
 * Returns { i, ms until that window ends } for the counter at its limit that blocks longest (nothing
 * changes), else { 0, 0 } after counting one attempt on every counter (a counter whose window ended starts a
 * new one).
 */
const LOGIN_ATTEMPT = `${REDIS_NOW_MS}
local now = redisNowMs()
local window = tonumber(ARGV[1])
local counts, resets = {}, {}
local blocked, wait = 0, 0
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 'reset')
  local n, reset = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if reset <= now then n = 0 end
  counts[i], resets[i] = n, reset
  local limit = tonumber(ARGV[1 + i])
  if limit > 0 and n >= limit and reset - now > wait then
    blocked, wait = i, reset - now
  end
end
if blocked > 0 then return { blocked, wait } end
for i, key in ipairs(KEYS) do
  if counts[i] == 0 then
    redis.call('HSET', key, 'n', 1, 'reset', now + window)
    redis.call('PEXPIRE', key, window)
  else
    redis.call('HINCRBY', key, 'n', 1)
  end
end
return { 0, 0 }
`

/**
 * login-settle-n: settles a counted attempt.
 * KEYS[1] the account's counter, KEYS[2..] counters to give one attempt back to (the address)
 * ARGV[1] '1' to delete KEYS[1] (a success), '0' to give it one back too (no answer on the password)
 * Returns 0.
 */
const LOGIN_SETTLE = `
for i, key in ipairs(KEYS) do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', key)
  elseif tonumber(redis.call('HGET', key, 'n') or '0') > 0 then
    redis.call('HINCRBY', key, 'n', -1)
  end
end
return 0
`

export const scripts = {
  sessionSet: new LuaScript(SESSION_SET),
  loginAttempt: new LuaScript(LOGIN_ATTEMPT),
  loginSettle: new LuaScript(LOGIN_SETTLE),
}
