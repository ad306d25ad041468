/**
 * The host faults of `npm run hosts`, one at a time under load: power-off (the cable out, every process of the
 * host SIGKILLed; held HOSTS_HOLD, then powered on again as after a reboot) of a host of each role, and a
 * partition (the cable out for 20 s, its processes running on) of a web host and of the store-Redis primary.
 * Each resolves once the bed is whole again (or the bound passed), with notes: how long the virtual address
 * took to move, how long Sentinel took to name a new primary.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type pg from 'pg'
import type { Client } from '../chaos/client.js'
import { failed } from '../chaos/client.js'
import { sleep, until } from '../chaos/wait.js'
import { parseDuration } from '../src/config/define.js'
import type { Bed } from './bed.js'

const exec = promisify(execFile)

/** How long a powered-off host stays off (HOSTS_HOLD, 15 s). */
export const HOLD_MS = parseDuration(process.env.HOSTS_HOLD ?? '15s')
/** How long a partition lasts. */
export const PARTITION_MS = 20_000
/** How long a fault may take, after the host is back, until the bed is whole again. */
export const RECOVER_MS = 90_000

export interface FaultResult {
  /** When the bed was whole again (epoch ms); undefined: not within RECOVER_MS. */
  wholeAt?: number
  notes: string[]
}

export interface FaultContext {
  bed: Bed
  client: Client
  db: pg.Pool
}

export interface HostFault {
  name: string
  what: string
  inject: (ctx: FaultContext) => Promise<FaultResult>
}

/** The LB host holding the virtual address now, if any. */
export async function vipHolder(bed: Bed): Promise<string | undefined> {
  const vip = `${bed.options.subnet}.${bed.topology.vipOctet}/`
  for (const h of bed.hostsWith('lb')) {
    if (bed.off.has(h.name)) continue
    const { stdout } = await exec('ip', ['-n', bed.net.ns(h.name), '-4', 'addr', 'show', 'eth0'])
    if (stdout.includes(` ${vip}`)) return h.name
  }
  return undefined
}

/** The host of the current primary of Redis role `role`, as the Sentinels name it. */
async function primaryHost(bed: Bed, role: 'store' | 'cache', except?: string): Promise<string> {
  const primaries = await until(() => bed.sentinelPrimaries(except), 10_000, 200)
  const addr = primaries?.[role].split(':')[0]
  const h = bed.hostsWith(role).find((x) => bed.addr(x.name) === addr)
  if (!h) throw new Error(`the Sentinels name no ${role} primary of the bed (${addr})`)
  return h.name
}

/**
 * Whole again: the bed's own checks pass and, for 2 s, no request of the load failed (a primary that is back
 * but no longer written to, say, is not whole).
 */
async function wholeAgain(ctx: FaultContext, from: number): Promise<number | undefined> {
  const at = await until(
    async () => {
      if (!(await ctx.bed.whole())) return undefined
      const since = Date.now() - 2_000
      if (since < from) return undefined
      const recent = ctx.client.samples.filter((s) => s.start >= since)
      return recent.length > 0 && !recent.some(failed) ? Date.now() : undefined
    },
    RECOVER_MS,
    250,
  )
  return at
}

/** Time from now until `probe` is true (polled every 50 ms within `ms`), or undefined. */
async function timeUntil(probe: () => Promise<boolean>, ms: number): Promise<number | undefined> {
  const start = Date.now()
  const ok = await until(async () => ((await probe()) ? true : undefined), ms, 50)
  return ok ? Date.now() - start : undefined
}

/** GET through the virtual address answers 200 within 500 ms (a fresh connection each time). */
async function entryAnswers(bed: Bed): Promise<boolean> {
  try {
    const res = await fetch(`${bed.entry}/api/categories`, {
      signal: AbortSignal.timeout(500),
      headers: { connection: 'close' },
    })
    await res.arrayBuffer()
    return res.status === 200
  } catch {
    return false
  }
}

const fmt = (ms: number | undefined) =>
  ms === undefined ? 'not within the bound' : `${(ms / 1000).toFixed(1)} s`

/**
 * Power-off of the host `pick` chooses, held HOLD_MS, then power-on; `during` measures what happens while it
 * is off (run at once after the power-off).
 */
function powerOff(
  name: string,
  pick: (ctx: FaultContext) => Promise<string>,
  during?: (ctx: FaultContext, host: string) => Promise<string[]>,
): HostFault {
  return {
    name,
    what: `power-off (cable out, every process SIGKILLed) for ${HOLD_MS / 1000} s, then power-on`,
    async inject(ctx) {
      const start = Date.now()
      const host = await pick(ctx)
      await ctx.bed.powerOff(host)
      // Measured meanwhile, whatever the hold: the host boots again on time.
      const measured = during?.(ctx, host).catch((err: Error) => [`measure failed: ${err.message}`])
      await sleep(Math.max(0, start + HOLD_MS - Date.now()))
      await ctx.bed.powerOn(host)
      const wholeAt = await wholeAgain(ctx, start)
      return { wholeAt, notes: [`host ${host}`, ...((await measured) ?? [])] }
    },
  }
}

function partition(name: string, pick: (ctx: FaultContext) => Promise<string>): HostFault {
  return {
    name,
    what: `partition: cable out for ${PARTITION_MS / 1000} s, processes running on`,
    async inject(ctx) {
      const start = Date.now()
      const host = await pick(ctx)
      const notes = [`host ${host}`]
      const role = host.startsWith('st') ? 'store' : undefined
      const cut = ctx.bed.partition(host, PARTITION_MS)
      if (role) notes.push(...(await failover(role, host)(ctx, host)))
      await cut
      return { wholeAt: await wholeAgain(ctx, start), notes }
    },
  }
}

/**
 * Sentinel's failover of `role`: the time until every Sentinel (but the cut-off host's) names another
 * primary; for the store, also the time until a worker starts a job again (a chaos job's run row).
 */
const failover =
  (role: 'store' | 'cache', except?: string) =>
  async (ctx: FaultContext, host: string): Promise<string[]> => {
    const start = Date.now()
    const moved = (h: string) => h !== host
    const ms = await timeUntil(
      async () => moved(await primaryHost(ctx.bed, role, except).catch(() => host)),
      30_000,
    )
    const notes = [`Sentinel named a new ${role} primary after ${fmt(ms)}`]
    if (role === 'store' && ms !== undefined) {
      const promoted = new Date(start + ms)
      const ran = await until(async () => {
        const { rows } = await ctx.db.query<{ at: Date | null }>(
          'SELECT min(started_at) AS at FROM chaos_runs WHERE started_at > $1',
          [promoted],
        )
        return rows[0]?.at ?? undefined
      }, 30_000)
      notes.push(
        ran
          ? `a worker started a job ${fmt(ran.getTime() - start)} after the fault`
          : 'no job started within 30 s of the promotion',
      )
    }
    return notes
  }

/**
 * keepalived's track script: `fleet lb` killed (and not restarted) on the host holding the virtual address,
 * keepalived running on; the address must move to the other LB. Restarted after HOSTS_HOLD.
 */
const lbProcessKilled: HostFault = {
  name: 'fleet lb killed on the active LB',
  what: `SIGKILL of fleet lb on the VIP holder (keepalived runs on), restarted after ${HOLD_MS / 1000} s`,
  async inject(ctx) {
    const start = Date.now()
    const host = (await vipHolder(ctx.bed)) ?? 'lb1'
    ctx.bed.killService(host, 'fleet-lb')
    const ms = await timeUntil(() => entryAnswers(ctx.bed), 30_000)
    const notes = [
      `host ${host}`,
      `virtual address answering from ${(await vipHolder(ctx.bed)) ?? 'nowhere'} after ${fmt(ms)}`,
    ]
    await sleep(Math.max(0, start + HOLD_MS - Date.now()))
    ctx.bed.startService(host, 'fleet-lb')
    return { wholeAt: await wholeAgain(ctx, start), notes }
  },
}

/**
 * Power-off of a worker host while it runs a chaos job (waited for, at most 20 s): the time from the
 * power-off until that job starts again on another worker.
 */
function workerPowerOff(host: string): HostFault {
  let jobId: string | undefined
  return powerOff(
    'power-off worker host',
    async ({ db }) => {
      jobId = await until(
        async () => {
          const { rows } = await db.query<{ job_id: string }>(
            `SELECT r.job_id FROM chaos_runs r WHERE r.instance = $1
             AND r.started_at > clock_timestamp() - interval '600 milliseconds'
             AND NOT EXISTS (SELECT 1 FROM chaos_effects e WHERE e.job_id = r.job_id)
           ORDER BY r.started_at DESC LIMIT 1`,
            [host],
          )
          return rows[0]?.job_id
        },
        20_000,
        50,
      )
      return host
    },
    async ({ db }) => {
      if (!jobId) return [`no chaos job ran on ${host} within 20 s`]
      const since = new Date()
      const at = await until(
        async () => {
          const { rows } = await db.query<{ at: Date }>(
            'SELECT started_at AS at FROM chaos_runs WHERE job_id = $1 AND started_at > $2 ORDER BY started_at LIMIT 1',
            [jobId, since],
          )
          return rows[0]?.at
        },
        90_000,
        100,
      )
      return [
        at
          ? `its job ran again ${fmt(at.getTime() - since.getTime())} after the power-off`
          : 'its job did not run again within 90 s',
      ]
    },
  )
}

export const FAULTS: HostFault[] = [
  powerOff(
    'power-off active LB',
    async ({ bed }) => (await vipHolder(bed)) ?? 'lb1',
    async ({ bed }) => {
      const ms = await timeUntil(() => entryAnswers(bed), 30_000)
      return [`virtual address answering from ${(await vipHolder(bed)) ?? 'nowhere'} after ${fmt(ms)}`]
    },
  ),
  lbProcessKilled,
  powerOff('power-off standby LB', async ({ bed }) => {
    const holder = await vipHolder(bed)
    return bed.hostsWith('lb').find((h) => h.name !== holder)?.name ?? 'lb2'
  }),
  powerOff('power-off web host', async () => 'web1'),
  workerPowerOff('wrk1'),
  powerOff('power-off store-Redis primary', ({ bed }) => primaryHost(bed, 'store'), failover('store')),
  powerOff('power-off cache-Redis primary', ({ bed }) => primaryHost(bed, 'cache'), failover('cache')),
  powerOff('power-off Sentinel host (a store replica)', async ({ bed }) => {
    const primary = await primaryHost(bed, 'store')
    return (
      bed
        .hostsWith('sentinel')
        .reverse()
        .find((h) => h.name !== primary)?.name ?? 'st3'
    )
  }),
  partition('partition web host', async () => 'web2'),
  partition('partition store-Redis primary', ({ bed }) => primaryHost(bed, 'store')),
]
