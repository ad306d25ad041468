/** One suite for every balancer strategy, plus what is particular to each. */
import { describe, expect, it } from 'vitest'
import { createBalancer, PowerOfTwoChoices } from '../../src/lb/balancer.js'
import type { StrategyName } from '../../src/lb/options.js'
import { Upstream } from '../../src/lb/upstream.js'

const now = () => 1_000_000

function upstreams(...urls: string[]): Upstream[] {
  return urls.map(
    (u) =>
      new Upstream(u, true, {
        connections: 1,
        connectTimeoutMs: 100,
        headersTimeoutMs: 100,
        bodyTimeoutMs: 100,
        idleTimeoutMs: 100,
        slowStartMs: 0,
        now,
      }),
  )
}

function counts(strategy: StrategyName, list: Upstream[], n: number): Map<string, number> {
  const b = createBalancer(strategy)
  const out = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const u = b.pick(list, now())
    out.set(u.origin, (out.get(u.origin) ?? 0) + 1)
  }
  return out
}

for (const strategy of ['p2c', 'round-robin', 'weighted'] as const) {
  describe(`balancer ${strategy}`, () => {
    it('always picks one of the candidates and spreads idle load over all of them', async () => {
      const list = upstreams('http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3')
      const c = counts(strategy, list, 3000)
      expect([...c.keys()].sort()).toEqual(list.map((u) => u.origin).sort())
      for (const v of c.values()) expect(v).toBeGreaterThan(600)
      await Promise.all(list.map((u) => u.destroy()))
    })

    it('handles a single candidate', async () => {
      const list = upstreams('http://127.0.0.1:1')
      expect(createBalancer(strategy).pick(list, now())).toBe(list[0])
      await list[0].destroy()
    })
  })
}

describe('balancer specifics', () => {
  it('round robin takes each in turn', async () => {
    const list = upstreams('http://127.0.0.1:1', 'http://127.0.0.1:2')
    const b = createBalancer('round-robin')
    expect([0, 1, 2, 3].map(() => b.pick(list, now()).origin)).toEqual([
      list[0].origin,
      list[1].origin,
      list[0].origin,
      list[1].origin,
    ])
    await Promise.all(list.map((u) => u.destroy()))
  })

  it('weighted round robin follows the weights and interleaves', async () => {
    const list = upstreams('http://127.0.0.1:1#weight=3', 'http://127.0.0.1:2')
    expect(list[0].weight).toBe(3)
    const b = createBalancer('weighted')
    const picks = Array.from({ length: 8 }, () => (b.pick(list, now()) === list[0] ? 'a' : 'b')).join('')
    expect(picks.split('').filter((c) => c === 'a').length).toBe(6)
    expect(picks).not.toContain('aaaa')
    await Promise.all(list.map((u) => u.destroy()))
  })

  it('p2c prefers the upstream with fewer outstanding requests', async () => {
    const list = upstreams('http://127.0.0.1:1', 'http://127.0.0.1:2')
    list[0].inflight = 10
    const b = new PowerOfTwoChoices()
    for (let i = 0; i < 100; i++) expect(b.pick(list, now())).toBe(list[1])
    await Promise.all(list.map((u) => u.destroy()))
  })
})
