import { setting } from '../define.js'

/** Job queues and workers (see docs/jobs.md). */
export const jobsSettings = {
  workerConcurrency: setting.int({
    env: 'FLEET_WORKER_CONCURRENCY',
    doc: 'Jobs one worker process runs at once, per queue, unless a job type sets its own.',
    default: 4,
    min: 1,
    max: 1000,
    unit: 'jobs',
    flag: 'concurrency',
    commands: ['worker'],
  }),
}
