import { Command } from 'commander'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cacheReport, flushCache } from '../../src/cache/admin.js'
import { registerCache } from '../../src/cli/cache.js'
import { createFixture, type Fixture, seed } from './support.js'

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
})
afterEach(async () => {
  await f.cleanup()
})

const BY_ID = 'SELECT id, name FROM products WHERE id = $1'

describe('fleet cache stats / flush', () => {
  it('stats counts reads and fills of every process; flush --tag invalidates what depends on the tag; flush all', async () => {
    const { products } = await seed(f.admin, 2)
    const s = await f.server()
    const prefix = f.config.redisPrefix
    for (const id of products) await s.cache.query(BY_ID, [id])
    await s.cache.query(BY_ID, [products[0]])
    await s.cache.stats() // adds this process's read counters to the shared hash (else every 5 s)
    const report = await cacheReport(s.redis, prefix)
    expect(report.counters.hit).toBe(1)
    expect(report.counters.fill).toBe(2)
    expect(report.keys.entries).toBe(2)

    expect(await flushCache(s.redis, prefix, 'categories')).toBe(0)
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT') // it does not read categories
    await flushCache(s.redis, prefix, 'products')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('MISS')
    expect(await flushCache(s.redis, prefix)).toBeGreaterThan(0)
    expect((await s.cache.query(BY_ID, [products[1]])).status).toBe('MISS')
  })

  it('the CLI prints the report, and refuses a bad tag with its code', async () => {
    const cli = async (...args: string[]): Promise<string> => {
      const program = new Command('fleet').exitOverride()
      registerCache(program)
      const out: string[] = []
      const write = process.stdout.write.bind(process.stdout)
      process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write
      try {
        const conn = ['--cache-redis-url', f.env.CACHE_REDIS_URL, '--redis-prefix', f.config.redisPrefix]
        await program.parseAsync(['cache', ...args, ...conn], { from: 'user' })
      } finally {
        process.stdout.write = write
      }
      return out.join('')
    }
    const stdout = await cli('stats')
    expect(stdout).toMatch(/hit ratio/)
    expect(stdout).toMatch(/keys\s+0 entries/)
    expect(await cli('flush', '--tag', 'products')).toMatch(/tag products invalidated/)
    await expect(cli('flush', '--tag', 'has space')).rejects.toMatchObject({
      code: 'FLEET_E_CACHE_INVALID_TAG',
    })
  })
})
