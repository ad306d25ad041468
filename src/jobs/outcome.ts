/**
 * How a job's end is written down: BullMQ keeps one string per failed job (`failedReason`), so a coded
 * error travels as `<code>: <message>`; readers split it back into `{ code, message }`.
 */
import type { Job } from 'bullmq'
import { isFleetError } from '../errors.js'
import { JobCancelledError, JobPermanentError } from './errors.js'
import type { JobData } from './runner.js'
import type { JobError } from './store.js'

/** The coded error of a thrown value (a plain Error becomes FLEET_E_JOBS_FAILED). */
export function toJobError(err: unknown): JobError {
  if (err instanceof JobPermanentError) {
    return { code: err.reason, message: err.message, ...(err.details ? { details: err.details } : {}) }
  }
  if (isFleetError(err)) return { code: err.code, message: err.message }
  const message = err instanceof Error ? err.message : String(err)
  return { code: 'FLEET_E_JOBS_FAILED', message }
}

/** `failedReason` text for a coded error. */
export function encodeReason(e: JobError): string {
  return `${e.code}: ${e.message}`
}

/**
 * Splits a `failedReason` back into a coded error: any code of upper-case words joined by `_` (Fleet's
 * `FLEET_E_*`, an app's own such as `GUESTBOOK_E_LINK`); BullMQ's own reasons become FLEET_E_JOBS_FAILED.
 */
export function decodeReason(reason: string | undefined): JobError {
  const m = /^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+): ([\s\S]*)$/.exec(reason ?? '')
  if (m) return { code: m[1], message: m[2] }
  return { code: 'FLEET_E_JOBS_FAILED', message: reason || 'the job failed' }
}

/** True when a failedReason records a cancellation. */
export function isCancelledReason(reason: string | undefined): boolean {
  return (reason ?? '').startsWith(`${JobCancelledError.code}:`)
}

/**
 * How many times a job was started: BullMQ's `attemptsStarted` counts every move to active, so a run that
 * stalled (its worker died) and ran again counts twice, unlike `attemptsMade` (failed attempts only).
 */
export function executions(job: Job<JobData>, active: boolean): number {
  const started = job.attemptsStarted ?? 0
  return Math.max(started, active ? job.attemptsMade + 1 : job.attemptsMade)
}
