/**
 * What a cache hit costs on the wire (src/cache/store.ts through src/redis/script.ts): one EVALSHA, the read
 * script, and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Breaker } from '../../src/cache/breaker.js'
import { CacheStore, EPOCH_TAG } from '../../src/cache/store.js'
import { createTestContext, recordCommands, type TestContext, uniqueId } from '../support/context.js'

let ctx: TestContext
/** The commands the store's connection sent, in order (lower case). */
let sent: string[] = []

beforeAll(async () => {
  ctx = await createTestContext({ migrate: false })
  sent = recordCommands(ctx.redis)
})
afterAll(async () => {
  await ctx?.cleanup()
})

describe('cache round trips', () => {
  it('a hit is one EVALSHA', async () => {
    const store = new CacheStore(ctx.redis, {
      prefix: `${ctx.config.redisPrefix}${uniqueId()}:`,
      tokenTtlMs: 60_000,
      lockTtlMs: 5_000,
      breaker: new Breaker({ threshold: 3, cooldownMs: 1_000 }),
    })
    const key = 'q:round-trips'
    const tags = [EPOCH_TAG, 'products']
    // The first call also asks INFO once, and Redis may not have the scripts yet (EVALSHA, then EVAL).
    expect((await store.read(key, Date.now())).kind).toBe('absent')
    const begun = await store.begin(key, tags, 'me')
    expect(begun.locked).toBe(true)
    const payload = Buffer.from('payload')
    const freshUntil = Date.now() + 60_000
    expect(await store.fill(key, 'me', { payload }, freshUntil, 60_000, tags, begun.tokens)).toBe(true)
    sent.length = 0
    const hit = await store.read(key, Date.now())
    expect(hit).toEqual({ kind: 'fresh', payload })
    expect(sent).toEqual(['evalsha'])
  })
})
