/** The jobs component: declare job types, submit and follow jobs over HTTP, run them in workers. */
export { builtinJobTypes, loadJobModules, noopJob, selectJobTypes } from './catalog.js'
export { JobClient, type JobView } from './client.js'
export { type AnyJobType, type CpuFunction, defineJob, type JobContext, type JobType } from './define.js'
export * from './errors.js'
export { accepted, idempotencyKey, jobClient, jobOwner, jobRoutes } from './routes.js'
export { JobRunner } from './runner.js'
export { type RunningWorker, startWorker } from './worker-process.js'
