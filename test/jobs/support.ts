/**
 * Helpers of the jobs tests: real worker processes (`fleet worker` from the sources, with the probe job
 * types), a logged-in session cookie, bounded polling, and an SSE reader over a real socket.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Job, type Queue } from 'bullmq'
import { afterAll, beforeAll } from 'vitest'
import { type Config, loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient, type JobView } from '../../src/jobs/client.js'
import { type RunningWorker, startWorker } from '../../src/jobs/worker-process.js'
import type { Redis } from '../../src/redis/connect.js'
import { SessionStore } from '../../src/web/session.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { waitFor } from '../support/wait.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
export const probeModule = fileURLToPath(new URL('./fixtures/probe-jobs.ts', import.meta.url))
const probeApp = fileURLToPath(new URL('./fixtures/probe-app.ts', import.meta.url))

/** Settings that make failures show quickly in tests. */
export const fastJobEnv: Record<string, string> = {
  FLEET_JOB_LOCK: '1s',
  FLEET_JOB_STALLED_INTERVAL: '500ms',
  FLEET_JOB_BACKOFF: '20ms',
  FLEET_SHUTDOWN_TIMEOUT: '3s',
  FLEET_REGISTRY_HEARTBEAT: '200ms',
  FLEET_REGISTRY_TTL: '2s',
  FLEET_WORKER_THREADS: '1',
  FLEET_JOB_MODULES: probeModule,
  FLEET_APP: probeApp,
}

export interface WorkerChild {
  child: ChildProcess
  /** The worker's /healthz, /readyz, /metrics base URL. */
  url: string
  /** Log lines so far (JSON). */
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `fleet worker` as a child process; resolves when it logs "worker ready". */
export async function spawnWorker(env: Record<string, string>, timeoutMs = 60_000): Promise<WorkerChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'worker'], {
    cwd: root,
    env: { ...process.env, ...env, FLEET_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  let partial = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`worker not ready after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`))
    }, timeoutMs)
    const onData = (chunk: Buffer) => {
      partial += chunk.toString('utf8')
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      for (const line of parts) {
        lines.push(line)
        if (line.includes('"worker ready"')) {
          clearTimeout(timer)
          resolve((JSON.parse(line) as { url: string }).url)
        }
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`worker exited (${code ?? signal}) before ready:\n${lines.slice(-20).join('\n')}`))
    })
  })
  return { child, url, lines, exited }
}

/** What `victimWorkerSuite` sets up: a test context, a job client, and `worker-victim` (one job at a time). */
export interface VictimSuite {
  ctx: TestContext
  client: JobClient
  victim: WorkerChild
}

/**
 * For a describe block about a worker that dies: before all, a test context with `env` (plus fastJobEnv),
 * a job client and a `fleet worker` child named `worker-victim` with concurrency 1; after all, the child
 * killed and everything cleaned up. Read the fields inside tests (they are set in beforeAll).
 */
export function victimWorkerSuite(env: Record<string, string> = {}): VictimSuite {
  const suite = {} as VictimSuite
  beforeAll(async () => {
    suite.ctx = await createTestContext({ env: { ...fastJobEnv, ...env } })
    suite.client = new JobClient({
      config: suite.ctx.config,
      redis: suite.ctx.redis,
      db: new Database(suite.ctx.pool),
    })
    suite.victim = await spawnWorker({
      ...suite.ctx.env,
      FLEET_INSTANCE_ID: 'worker-victim',
      FLEET_WORKER_CONCURRENCY: '1',
    })
  }, 90_000)
  afterAll(async () => {
    suite.victim?.child.kill('SIGKILL')
    await suite.client?.close()
    await suite.ctx?.cleanup()
  })
  return suite
}

/**
 * The scene of the hand-off tests: job A (15 steps) running on the victim, a second worker
 * `worker-survivor` (concurrency 2) running job B (`stepsB` steps), then the victim SIGKILLed. Returns the
 * survivor (stop it), both jobs and when the victim died (performance.now()).
 */
export async function victimDiesMidJob(
  s: VictimSuite,
  stepsB: number,
): Promise<{ survivor: RunningWorker; a: JobView; b: JobView; queue: Queue; died: number }> {
  const queue = s.client.queues.get(sleepJob)
  const a = await s.client.submit(sleepJob, { ms: 200, steps: 15 }, 'user:1')
  await waitFor('the victim to start job A', activeOn(queue, a.id, 'worker-victim'))
  const survivor = await startWorker(
    loadConfig({
      env: { ...s.ctx.env, FLEET_INSTANCE_ID: 'worker-survivor', FLEET_WORKER_CONCURRENCY: '2' },
    }),
    [sleepJob, flakyJob],
  )
  try {
    const b = await s.client.submit(sleepJob, { ms: 200, steps: stepsB }, 'user:1')
    await waitFor('the survivor to start job B', activeOn(queue, b.id, 'worker-survivor'))
    s.victim.child.kill('SIGKILL')
    if ((await s.victim.exited).signal !== 'SIGKILL') throw new Error('the victim did not die of SIGKILL')
    return { survivor, a, b, queue, died: performance.now() }
  } catch (err) {
    await survivor.stop()
    throw err
  }
}

/** Waits (up to 30 s) for job `id` of user 1 to end, completed or failed; resolves with its view. */
export function jobEnded(client: JobClient, id: string): Promise<JobView> {
  return waitFor(
    `job ${id} to end`,
    async () => {
      const v = await client.get(id, 'user:1')
      return v.state === 'completed' || v.state === 'failed' ? v : undefined
    },
    30_000,
  )
}

/** A waitFor probe: job `id` of `queue`, once it is active on `worker` (else undefined). */
export function activeOn(queue: Queue, id: string, worker: string): () => Promise<Job | undefined> {
  return async () => {
    const job = await Job.fromId(queue, id)
    return job && (await job.getState()) === 'active' && job.processedBy === worker ? job : undefined
  }
}

/** A session cookie of a logged-in user (the session is created in Redis like a login would). */
export async function loginCookie(
  redis: Redis,
  config: Config,
  user: { id: number; role?: 'customer' | 'admin' },
): Promise<string> {
  const store = new SessionStore(redis, { prefix: config.redisPrefix, ttlMs: 600_000 })
  const sid = await store.create({
    user: JSON.stringify({ id: user.id, email: `u${user.id}@example.com`, role: user.role ?? 'customer' }),
  })
  return `${config.sessionCookie}=${sid}`
}

export { waitFor }

export interface SseEvent {
  id?: string
  event: string
  data: Record<string, unknown>
}

/**
 * Reads an SSE response until it ends (or `stopAfter` says stop); returns the events. Bounded by
 * `timeoutMs`.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  options: { stopAfter?: (e: SseEvent) => boolean; timeoutMs?: number } = {},
): Promise<{ status: number; events: SseEvent[]; contentType: string | null }> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), options.timeoutMs ?? 20_000)
  const res = await fetch(url, { headers, signal: ac.signal })
  const events: SseEvent[] = []
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer)
    await res.text().catch(() => {})
    return { status: res.status, events, contentType: res.headers.get('content-type') }
  }
  const decoder = new TextDecoder()
  let buf = ''
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true })
      let idx = buf.indexOf('\n\n')
      while (idx >= 0) {
        const block = buf.slice(0, idx)
        buf = buf.slice(idx + 2)
        idx = buf.indexOf('\n\n')
        const e: SseEvent = { event: 'message', data: {} }
        let data = ''
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) e.id = line.slice(4)
          else if (line.startsWith('event: ')) e.event = line.slice(7)
          else if (line.startsWith('data: ')) data += line.slice(6)
        }
        if (!data) continue
        e.data = JSON.parse(data) as Record<string, unknown>
        events.push(e)
        if (options.stopAfter?.(e)) {
          ac.abort()
          return { status: res.status, events, contentType: res.headers.get('content-type') }
        }
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err
  } finally {
    clearTimeout(timer)
  }
  return { status: res.status, events, contentType: res.headers.get('content-type') }
}
