/**
 * The cache's Redis scripts, run by LuaScript (src/redis/script.ts): each is one atomic round trip (EVALSHA)
 * and opens with its KEYS/ARGV/return contract.
 * Every key a script touches carries the same hash tag (`{cache}` after the prefix), so all of them live in
 * one Cluster slot. Scripts receive their keys in KEYS, except `read`, which derives the token keys from the
 * tags the entry records (same hash tag, same slot; the caller does not know an object's tags before reading).
 *
 * An entry is a hash: d = payload (msgpack; for a response entry, its head and body, see responses.ts),
 * f = fresh-until (ms since epoch), t = tags (newline separated),
 * g = the token each tag had when the load began (same order), k = the token keys of the tags (same order),
 * each packed by cmsgpack and concatenated, so that `read` passes them to MGET with one C call instead of
 * splitting and prefixing strings in Lua (a quarter of the script's time). A token is an opaque unique
 * string; a missing token never equals anything, so a lost or evicted token turns its entries into misses.
 * A response entry also has e = its ETag and h = its head, so a matching If-None-Match is answered without
 * sending the body.
 *
 * Each script opens with a `#!lua` shebang (Redis 7.0) and without the `no-writes` flag, so that a replica
 * refuses it (READONLY) before it runs: a connection that finds itself on a demoted primary, whose data now
 * comes from another history, reads nothing there (docs/cache.md, "Failover"). `allow-oom` on those that only
 * delete or replace (read, bump, release) keeps them running when Redis is at its memory cap. A Redis before
 * 7.0 has no flags and cannot compile that line: the store then runs `unflaggedScripts`, the same without it.
 */
import { LuaScript } from '../redis/script.js'

/** Shared fragment: `split(s)` turns newline-separated text into a Lua array. */
const SPLIT = `
local function split(s)
  local out = {}
  if s == nil or s == false or s == '' then return out end
  for part in string.gmatch(s, '[^\\n]+') do out[#out + 1] = part end
  return out
end
`

/**
 * read-1: validates an entry against the current tokens. Read-only but for deleting an invalid entry; the
 * token list is compared as one string (the tokens joined by newlines, as the fill stored them).
 * KEYS[1] entry key
 * ARGV[1] now (ms since epoch)
 * ARGV[2] a request's If-None-Match ('' = none): compared with a response entry's ETag (field e)
 * ARGV[3] '1' = return a fresh entry's tags and tokens too (for a load that builds on this entry)
 * Returns the payload when fresh (a bare bulk string: the common case builds no array), 0 absent, 1 invalid (a
 * token changed or is missing, or the entry predates field k; the entry is deleted), {3, payload} expired but
 * inside its grace period (valid, may be served stale), {4, head} fresh and its ETag named by ARGV[2] (the
 * body is not sent), {2, payload, tags, tokens} fresh with ARGV[3].
 */
export const READ = `#!lua flags=allow-oom
local e = redis.call('HMGET', KEYS[1], 'd', 'f', 'k', 'g', 'e')
if not e[1] then return 0 end
local valid = e[3] and e[3] ~= ''
if valid then
  local cur = redis.call('MGET', cmsgpack.unpack(e[3]))
  for i = 1, #cur do
    if not cur[i] then valid = false end
  end
  valid = valid and table.concat(cur, '\\n') == e[4]
end
if not valid then
  redis.call('DEL', KEYS[1])
  return 1
end
if tonumber(e[2]) <= tonumber(ARGV[1]) then return {3, e[1]} end
if ARGV[2] ~= '' and e[5] and (ARGV[2] == '*' or string.find(ARGV[2], e[5], 1, true)) then
  return {4, redis.call('HGET', KEYS[1], 'h')}
end
if ARGV[3] == '1' then return {2, e[1], redis.call('HGET', KEYS[1], 't'), e[4]} end
return e[1]
`

/**
 * begin-n: before a load, reads (creating when missing) the token of every tag, and tries to take the fill lock.
 * KEYS[1] lock key, KEYS[2] entry key, KEYS[3..] token keys (one per tag)
 * ARGV[1] new-token seed (unique per call), ARGV[2] token ttl (ms), ARGV[3] lock owner ('' = no lock wanted),
 * ARGV[4] lock ttl (ms), ARGV[5] '1' = take the lock only if the entry is absent (a waiter taking over)
 * Returns {state, token of KEYS[3], token of KEYS[4], ...}: state 1 locked, 0 lock held elsewhere,
 * 2 not locked because the entry exists now (read it again)
 */
export const BEGIN = `#!lua
local out = {0}
for i = 3, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    v = ARGV[1] .. ':' .. i
    redis.call('SET', KEYS[i], v, 'PX', ARGV[2])
  else
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
  out[#out + 1] = v
end
if ARGV[3] ~= '' then
  if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
    out[1] = 2
  elseif redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then
    out[1] = 1
  end
end
return out
`

/**
 * tokens-n: reads (creating when missing) the tokens of more tags during a load (an object's dependencies
 * found while it is assembled). KEYS token keys; ARGV[1] new-token seed, ARGV[2] token ttl (ms).
 * Returns the tokens in KEYS order.
 */
export const TOKENS = `#!lua
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    v = ARGV[1] .. ':' .. i
    redis.call('SET', KEYS[i], v, 'PX', ARGV[2])
  end
  out[#out + 1] = v
end
return out
`

/**
 * fill-n: stores an entry only if every tag still has the token seen before the load began (no stale set),
 * then releases the fill lock when this caller owns it.
 * KEYS[1] entry key, KEYS[2] lock key, KEYS[3] stats hash, KEYS[4..] token keys (one per tag, in order)
 * ARGV[1] lock owner ('' = none), ARGV[2] payload, ARGV[3] fresh-until (ms), ARGV[4] entry lifetime
 * (ms, ttl + grace), ARGV[5] tags (newline separated), ARGV[6] tokens (newline separated, same order),
 * ARGV[7] ETag ('' = none), ARGV[8] head of a response entry ('' = none)
 * Returns 1 stored, 0 refused (a tag was invalidated or lost since the load began).
 */
export const FILL = `#!lua
${SPLIT}
local tokens = split(ARGV[6])
local ok = #tokens == #KEYS - 3
if ok and #KEYS > 3 then
  local cur = redis.call('MGET', unpack(KEYS, 4))
  for i = 1, #tokens do
    if cur[i] ~= tokens[i] then ok = false end
  end
end
local stored = 0
if ok then
  local k = {}
  for i = 4, #KEYS do k[#k + 1] = cmsgpack.pack(KEYS[i]) end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'd', ARGV[2], 'f', ARGV[3], 't', ARGV[5], 'g', ARGV[6], 'k', table.concat(k))
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'e', ARGV[7], 'h', ARGV[8]) end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('HINCRBY', KEYS[3], 'fill', 1)
  stored = 1
else
  redis.call('HINCRBY', KEYS[3], 'refused', 1)
end
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return stored
`

/**
 * bump-n: replaces the token of every tag that has one (an invalidation). A tag without a token needs
 * nothing: no valid entry can depend on a missing token, and the next load creates a new one.
 * KEYS[1..n] token keys, KEYS[n+1] stats hash
 * ARGV[1] new token (unique per call), ARGV[2] token ttl (ms)
 * Returns the number of tokens replaced.
 */
export const BUMP = `#!lua flags=allow-oom
local n = 0
for i = 1, #KEYS - 1 do
  if redis.call('SET', KEYS[i], ARGV[1], 'XX', 'PX', ARGV[2]) then n = n + 1 end
end
redis.call('HINCRBY', KEYS[#KEYS], 'invalidate', #KEYS - 1)
return n
`

/**
 * release-1: drops the fill lock when the caller still owns it.
 * KEYS[1] lock key; ARGV[1] owner. Returns 1 released, 0 not the owner (or already gone).
 */
export const RELEASE = `#!lua flags=allow-oom
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * history-2: makes every entry cached under another replication history a miss, atomically with reading which
 * history this server is on. The server's identity is its run_id (new at every start: a restarted Redis may
 * have reloaded an AOF that lacks its last token bumps, or nothing) and its master_replid (new when a replica is
 * promoted: it may have missed the last bumps of the old primary). When the identity differs from the one
 * recorded with the epoch, the epoch token is replaced and the identity recorded, in this one script, so the
 * first process to reach a new history replaces the epoch and the others find it done.
 * KEYS[1] history key (the identity the epoch was made under), KEYS[2] epoch token key
 * ARGV[1] new epoch token (unique per call), ARGV[2] token ttl (ms)
 * Returns {state, identity, major version of Redis}: state 0 same history, 1 new history (epoch replaced), 2 the
 * server gives no identity (epoch replaced every time). An error reply when the server is not a primary. No
 * shebang: it runs on every Redis version (it tells the store which script set to use), and refuses a replica
 * by its own role check, before any write.
 */
export const HISTORY = `
local info = redis.call('INFO', 'server')
local major = tonumber(string.match(info, 'redis_version:(%d+)')) or 0
info = info .. redis.call('INFO', 'replication')
if string.match(info, 'role:(%a+)') ~= 'master' then
  return redis.error_reply('FLEETNOTPRIMARY the cache Redis is not a primary')
end
local run = string.match(info, 'run_id:(%x+)')
local repl = string.match(info, 'master_replid:(%x+)')
if not run or not repl then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {2, '', major}
end
local id = run .. '/' .. repl
if redis.call('GET', KEYS[1]) == id then return {0, id, major} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[1], id)
return {1, id, major}
`

/** Their replies come back as Buffers (`runBuffer`): payloads are msgpack, not text. */
export const scripts = {
  read: new LuaScript(READ),
  begin: new LuaScript(BEGIN),
  tokens: new LuaScript(TOKENS),
  fill: new LuaScript(FILL),
  bump: new LuaScript(BUMP),
  release: new LuaScript(RELEASE),
  history: new LuaScript(HISTORY),
}

export type CacheScripts = typeof scripts

const unflagged = (source: string) => new LuaScript(source.replace(/^#!lua[^\n]*\n/, ''))

/**
 * The same scripts without their `#!lua` line, for a Redis before 7.0 (no script flags: a replica runs them,
 * and they fail only at their first write there), and for operators' one-off calls that must run anywhere.
 */
export const unflaggedScripts: CacheScripts = {
  read: unflagged(READ),
  begin: unflagged(BEGIN),
  tokens: unflagged(TOKENS),
  fill: unflagged(FILL),
  bump: unflagged(BUMP),
  release: unflagged(RELEASE),
  history: scripts.history,
}
