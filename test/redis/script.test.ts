/**
 * The one way scripts run (src/redis/script.ts), on a real Redis: one EVALSHA per run once Redis has the
 * script, EVAL only after NOSCRIPT; replies as strings or as Buffers; and the Redis clock fragment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LuaScript, REDIS_NOW_MS } from '../../src/redis/script.js'
import { createTestContext, recordCommands, type TestContext, uniqueId } from '../support/context.js'

let ctx: TestContext
/** The commands this test's connection sent, in order (lower case). */
let sent: string[] = []

beforeAll(async () => {
  ctx = await createTestContext({ migrate: false })
  sent = recordCommands(ctx.redis)
})
afterAll(async () => {
  await ctx?.cleanup()
})

/** A script no Redis has loaded yet: its source is unique to this run. */
function fresh(body: string): LuaScript {
  return new LuaScript(`-- ${uniqueId()}\n${body}`)
}

describe('LuaScript', () => {
  it('loads a script Redis lacks with EVAL once, then runs it with one EVALSHA', async () => {
    const script = fresh("return redis.call('SET', KEYS[1], ARGV[1])")
    const key = `${ctx.config.redisPrefix}script:${uniqueId()}`
    expect(await ctx.redis.script('EXISTS', script.sha)).toEqual([0])
    sent.length = 0
    expect(await script.run(ctx.redis, [key], ['a'])).toBe('OK')
    expect(sent).toEqual(['evalsha', 'eval']) // NOSCRIPT, then the source
    sent.length = 0
    expect(await script.run(ctx.redis, [key], ['b'])).toBe('OK')
    expect(sent).toEqual(['evalsha'])
    expect(await ctx.redis.get(key)).toBe('b')
  })

  it('answers bulk strings as strings or as Buffers, and passes script errors on', async () => {
    const script = fresh('return { ARGV[1], tonumber(ARGV[2]) + 1 }')
    expect(await script.run(ctx.redis, [], ['é', 41])).toEqual(['é', 42])
    expect(await script.runBuffer(ctx.redis, [], ['é', 41])).toEqual([Buffer.from('é'), 42])
    await expect(fresh("return redis.call('NOPE')").run(ctx.redis, [], [])).rejects.toThrow(/NOPE|Unknown/i)
  })

  it('reads the Redis clock in ms', async () => {
    const script = fresh(`${REDIS_NOW_MS}\nreturn redisNowMs()`)
    const [s, us] = await ctx.redis.time()
    const before = Number(s) * 1000 + Math.floor(Number(us) / 1000)
    const now = (await script.run(ctx.redis, [], [])) as number
    expect(now).toBeGreaterThanOrEqual(before)
    expect(now).toBeLessThan(before + 1_000)
  })
})
