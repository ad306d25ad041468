/**
 * The registry's Redis scripts (store Redis), run by LuaScript (src/redis/script.ts). Each touches one key,
 * the role's hash, and judges expiry by the Redis clock, so instances whose clocks disagree agree on who is
 * alive.
 */
import { LuaScript, REDIS_NOW_MS } from '../redis/script.js'

/**
 * announce-1: stores (or renews) an instance's entry with expiresAt = Redis now + TTL.
 * KEYS[1] the role's hash
 * ARGV[1] instance id, ARGV[2] entry JSON (without expiresAt), ARGV[3] TTL (ms)
 * Returns expiresAt (ms, Redis clock).
 */
const ANNOUNCE = `${REDIS_NOW_MS}
local entry = cjson.decode(ARGV[2])
entry.expiresAt = redisNowMs() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return entry.expiresAt
`

/**
 * list-1: the live entries of a role; drops those that are not valid JSON, and those whose expiresAt has
 * passed (Redis clock) more than ARGV[1] ms ago (until then an expired entry is only left out, so that
 * claim-expired-1 can still hand a dead worker's jobs on).
 * KEYS[1] the role's hash
 * ARGV[1] how long an expired entry is kept for its claim (ms; 0: dropped at once)
 * Returns the live entries as JSON strings.
 */
const LIST = `${REDIS_NOW_MS}
local now = redisNowMs()
local keep = tonumber(ARGV[1]) or 0
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  local expiresAt = ok and type(entry) == 'table' and tonumber(entry.expiresAt)
  if expiresAt and expiresAt > now then
    live[#live + 1] = all[i + 1]
  elseif not expiresAt or expiresAt + keep <= now then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`

/**
 * claim-expired-1: takes the expired entries of a role out of the registry and returns them, so that of all
 * the processes that look, exactly one gets each (and hands that instance's work on).
 * KEYS[1] the role's hash
 * Returns the entries whose expiresAt has passed (Redis clock), as JSON strings, each removed.
 */
const CLAIM_EXPIRED = `${REDIS_NOW_MS}
local now = redisNowMs()
local all = redis.call('HGETALL', KEYS[1])
local gone = {}
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  local expiresAt = ok and type(entry) == 'table' and tonumber(entry.expiresAt)
  if expiresAt and expiresAt <= now then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = all[i + 1]
  end
end
return gone
`

export const scripts = {
  announce: new LuaScript(ANNOUNCE),
  list: new LuaScript(LIST),
  claimExpired: new LuaScript(CLAIM_EXPIRED),
}
