/**
 * The one way Fleet runs a Redis script, as bullmq's commands: each script is a constant of its component's
 * scripts module (src/cache/scripts.ts, src/web/scripts.ts, src/registry/scripts.ts), named
 * `<operation>-<number of keys>` and opening with its KEYS/ARGV/return contract, with shared fragments
 * included from here rather than copied. `run` costs one round trip: EVALSHA, and EVAL (which also loads
 * the script) only when Redis answers NOSCRIPT, after a restart or a SCRIPT FLUSH.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

/**
 * Shared fragment: `redisNowMs()` is the Redis server's clock in ms since the epoch. A script that judges
 * time by it gives every process the same answer, whatever its own clock says.
 */
export const REDIS_NOW_MS = `
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

type Arg = string | Buffer | number

/** A script run by EVALSHA, loaded with EVAL on NOSCRIPT. */
export class LuaScript {
  readonly sha: string

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /** Runs the script; bulk string replies come back as strings. */
  run(redis: Redis, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
    return this.#send(redis, false, keys, args)
  }

  /** Runs the script; bulk string replies come back as Buffers (payloads that are not text). */
  runBuffer(redis: Redis, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
    return this.#send(redis, true, keys, args)
  }

  async #send(
    redis: Redis,
    buffers: boolean,
    keys: readonly string[],
    args: readonly Arg[],
  ): Promise<unknown> {
    const send = (command: string, first: string) => {
      const argv = [first, keys.length, ...keys, ...args]
      return buffers ? redis.callBuffer(command, argv) : redis.call(command, argv)
    }
    try {
      return await send('EVALSHA', this.sha)
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
      return send('EVAL', this.source)
    }
  }
}
