import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Registration } from '../src/registry/registration.js'
import { Registry } from '../src/registry/registry.js'
import { createTestContext, type TestContext } from './support/context.js'
import { waitFor } from './support/wait.js'

describe('registry', () => {
  let ctx: TestContext
  beforeEach(async () => {
    ctx = await createTestContext({ migrate: false })
  })
  afterEach(() => ctx.cleanup())

  const info = (id: string) => ({
    id,
    role: 'web' as const,
    url: `http://127.0.0.1:1/${id}`,
    host: 'h',
    pid: 1,
    state: 'ready' as const,
    startedAt: Date.now(),
  })

  it('lists announced instances and drops them after their TTL', async () => {
    const registry = new Registry(ctx.redis, ctx.config.redisPrefix)
    await registry.announce(info('a'), 60_000)
    await registry.announce(info('b'), 150)
    expect((await registry.list('web')).map((e) => e.id).sort()).toEqual(['a', 'b'])
    const left = await waitFor('b to pass its TTL', async () => {
      const ids = (await registry.list('web')).map((e) => e.id)
      return ids.includes('b') ? undefined : ids
    })
    expect(left).toEqual(['a'])
    // The expired entry was pruned from Redis, not only filtered.
    expect(await ctx.redis.hkeys(registry.key('web'))).toEqual(['a'])
  })

  it('a registration heartbeats, publishes state changes and removes itself on stop', async () => {
    const registry = new Registry(ctx.redis, ctx.config.redisPrefix)
    const reg = new Registration(registry, info('w1'), { ttlMs: 300, heartbeatMs: 50 })
    await reg.start()
    // fixed wait: longer than the 300 ms TTL, so that only the heartbeats can have kept the entry.
    await new Promise((r) => setTimeout(r, 500))
    expect((await registry.list('web')).map((e) => e.id)).toEqual(['w1'])
    await reg.setState('draining')
    expect((await registry.list('web'))[0].state).toBe('draining')
    await reg.stop()
    expect(await registry.list('web')).toEqual([])
  })
})
