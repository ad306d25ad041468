/**
 * The cache's two script sets (src/cache/scripts.ts): with the `#!lua` line (Redis 7.0 and later, chosen by the
 * history check from the server's version) and without it (a Redis before 7.0, which cannot compile that line).
 * Each runs the store's whole cycle on a real Redis: a miss, a fill, a hit, an invalidation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Breaker } from '../../src/cache/breaker.js'
import { scripts, unflaggedScripts } from '../../src/cache/scripts.js'
import { CacheStore, EPOCH_TAG } from '../../src/cache/store.js'
import { createTestContext, type TestContext, uniqueId } from '../support/context.js'

let ctx: TestContext
beforeAll(async () => {
  ctx = await createTestContext({ migrate: false })
})
afterAll(async () => {
  await ctx?.cleanup()
})

describe('cache script sets', () => {
  it('the unflagged set is the flagged one without its first line (the history script has none)', () => {
    for (const name of ['read', 'begin', 'tokens', 'fill', 'bump', 'release'] as const) {
      expect(scripts[name].source).toMatch(/^#!lua( flags=allow-oom)?\n/)
      expect(unflaggedScripts[name].source).toBe(scripts[name].source.replace(/^.*\n/, ''))
    }
    expect(scripts.history.source.startsWith('#!')).toBe(false)
  })

  for (const scriptFlags of [undefined, false]) {
    it(`the store's cycle with ${scriptFlags === false ? 'the unflagged set (Redis before 7.0)' : "the set the server's version picks"}`, async () => {
      const store = new CacheStore(ctx.redis, {
        prefix: `${ctx.config.redisPrefix}${uniqueId()}:`,
        tokenTtlMs: 60_000,
        lockTtlMs: 5_000,
        breaker: new Breaker({ threshold: 3, cooldownMs: 1_000 }),
        scriptFlags,
      })
      try {
        const key = 'q:flags'
        const tags = [EPOCH_TAG, 'products']
        expect((await store.read(key, Date.now())).kind).toBe('absent')
        const begun = await store.begin(key, tags, 'me')
        expect(begun.locked).toBe(true)
        const payload = Buffer.from('payload')
        const fresh = Date.now() + 60_000
        expect(await store.fill(key, 'me', { payload }, fresh, 60_000, tags, begun.tokens)).toBe(true)
        expect(await store.read(key, Date.now())).toEqual({ kind: 'fresh', payload })
        await store.bump(['products'])
        expect((await store.read(key, Date.now())).kind).toBe('invalid')
        expect(store.history).toMatch(/^\w+\/\w+$/)
      } finally {
        store.close()
      }
    })
  }
})
