/**
 * Scheduled runs of job types (BullMQ job schedulers). Every worker upserts the schedulers of the types it
 * runs at start; an upsert of the same id is idempotent, so one scheduled job is produced per period however
 * many workers there are. A cron of `off` removes the scheduler.
 */
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import type { AnyJobType } from './define.js'
import { jobOptions, type QueueSet } from './queues.js'
import type { JobData } from './runner.js'

/** The scheduler id of a type (one per type). */
export function schedulerId(type: AnyJobType): string {
  return `${type.name}.schedule`
}

/** Creates, updates or removes the scheduler of each type that declares a schedule. */
export async function upsertSchedules(
  types: readonly AnyJobType[],
  queues: QueueSet,
  config: Config,
  logger: Logger,
): Promise<void> {
  for (const type of types) {
    if (!type.schedule) continue
    const cron = type.schedule.cron(config)
    const queue = queues.get(type)
    if (cron === 'off') {
      await queue.removeJobScheduler(schedulerId(type))
      continue
    }
    const data: JobData = { payload: type.schedule.payload, owner: 'system' }
    const { attempts, backoff, removeOnComplete, removeOnFail } = jobOptions(type, config)
    await queue.upsertJobScheduler(
      schedulerId(type),
      { pattern: cron },
      { name: type.name, data, opts: { attempts, backoff, removeOnComplete, removeOnFail } },
    )
    logger.info({ type: type.name, cron }, 'job scheduled')
  }
}
