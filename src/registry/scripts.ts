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
 * list-1: the live entries of a role; drops those whose expiresAt has passed (Redis clock) or that are not
 * valid JSON.
 * KEYS[1] the role's hash
 * Returns the live entries as JSON strings.
 */
const LIST = `${REDIS_NOW_MS}
local now = redisNowMs()
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  if ok and type(entry) == 'table' and tonumber(entry.expiresAt) and tonumber(entry.expiresAt) > now then
    live[#live + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`

export const scripts = {
  announce: new LuaScript(ANNOUNCE),
  list: new LuaScript(LIST),
}
