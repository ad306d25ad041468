/**
 * Scheduled job types: workers keep one BullMQ job scheduler per type (an idempotent upsert, so many
 * workers make one schedule), produce jobs on it, and remove it when the cron is `off`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recommendationsJob } from '../../apps/shop/recommendations.js'
import { shopConfig, shopSettings } from '../../apps/shop/settings.js'
import { loadConfig } from '../../src/config/index.js'
import { QueueSet } from '../../src/jobs/queues.js'
import { schedulerId, upsertSchedules } from '../../src/jobs/schedules.js'
import { createLogger } from '../../src/log.js'
import { createTestContext, type TestContext } from '../support/context.js'

describe('job schedules', () => {
  let ctx: TestContext
  let queues: QueueSet
  const logger = createLogger({ logLevel: 'silent' })

  beforeAll(async () => {
    ctx = await createTestContext({ migrate: false })
    queues = new QueueSet(ctx.config, ctx.redis)
  })
  afterAll(async () => {
    await queues?.close()
    await ctx?.cleanup()
  })

  it('upserts one scheduler per type whatever the number of workers, and removes it when off', async () => {
    const nightly = loadConfig({ env: ctx.env, extra: shopSettings })
    expect(shopConfig(nightly).recommendationsCron).toBe('0 3 * * *')
    // Three workers starting together.
    await Promise.all([1, 2, 3].map(() => upsertSchedules([recommendationsJob], queues, nightly, logger)))
    const queue = queues.get(recommendationsJob)
    const schedulers = await queue.getJobSchedulers()
    expect(schedulers.map((s) => [s.key, s.pattern])).toEqual([
      [schedulerId(recommendationsJob), '0 3 * * *'],
    ])
    const delayed = await queue.getDelayed()
    expect(delayed).toHaveLength(1)
    expect(delayed[0].data).toMatchObject({ owner: 'system', payload: {} })
    expect(delayed[0].timestamp + delayed[0].delay).toBeGreaterThan(Date.now())

    const off = loadConfig({ env: { ...ctx.env, FLEET_RECOMMENDATIONS_CRON: 'off' }, extra: shopSettings })
    await upsertSchedules([recommendationsJob], queues, off, logger)
    expect(await queue.getJobSchedulers()).toEqual([])
    expect(() =>
      loadConfig({ env: { ...ctx.env, FLEET_RECOMMENDATIONS_CRON: 'nightly' }, extra: shopSettings }),
    ).toThrow(/FLEET_RECOMMENDATIONS_CRON/)
  })
})
