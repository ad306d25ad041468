/**
 * The checks after the run: how each accepted job ended (its state and attempts through the API, its effect
 * rows in PostgreSQL), and which acknowledged writes are gone (each review by id in PostgreSQL, each
 * writer's last acknowledged cart quantity and session through the API).
 */
import type pg from 'pg'
import type { Client } from './client.js'
import type { AcceptedJob, Writer } from './traffic.js'

export interface JobOutcome {
  state: string
  attempts: number
  effects: number
}

/** A write acknowledged to a user and not found at the end. */
export interface LostWrite {
  /** When it was acknowledged (epoch ms). */
  at: number
  what: string
}

export async function jobOutcomes(
  db: pg.Pool,
  client: Client,
  jobs: readonly AcceptedJob[],
): Promise<Map<string, JobOutcome>> {
  const out = new Map<string, JobOutcome>()
  const { rows } = await db.query<{ job_id: string; n: number }>(
    'SELECT job_id, count(*)::int AS n FROM chaos_effects GROUP BY job_id',
  )
  const effects = new Map(rows.map((r) => [r.job_id, r.n]))
  for (const j of jobs) {
    const a = await client.call(undefined, 'GET', `/api/jobs/${j.id}`, { headers: { cookie: j.cookie } })
    const view = a.body as { state?: string; attempts?: number }
    out.set(j.id, {
      state: view?.state ?? `HTTP ${a.status}`,
      attempts: view?.attempts ?? 0,
      effects: effects.get(j.id) ?? 0,
    })
  }
  return out
}

export async function lostWrites(
  db: pg.Pool,
  client: Client,
  writers: readonly Writer[],
): Promise<LostWrite[]> {
  const lost: LostWrite[] = []
  const { rows } = await db.query<{ id: number }>('SELECT id FROM reviews')
  const reviewIds = new Set(rows.map((r) => Number(r.id)))
  for (const w of writers) {
    for (const r of w.reviews)
      if (!reviewIds.has(r.id)) lost.push({ at: r.at, what: `review ${r.id} of ${w.email}` })
    const cart = await client.call(undefined, 'GET', '/api/cart', { headers: { cookie: w.cookie } })
    if (cart.status !== 200) {
      lost.push({ at: Date.now(), what: `the session of ${w.email} (${cart.status} ${cart.code})` })
      continue
    }
    const items = new Map(
      (cart.body as { items: { productId: number; quantity: number }[] }).items.map((i) => [
        i.productId,
        i.quantity,
      ]),
    )
    for (const [productId, e] of w.cart) {
      if (e.acked === 0) continue
      const q = items.get(productId) ?? 0
      // A write that failed for the client may still have applied: only a value older than the ack is a loss.
      if (q !== e.acked && !e.since.includes(q))
        lost.push({
          at: e.ackedAt,
          what: `cart of ${w.email}: product ${productId} is ${q}, acked ${e.acked}`,
        })
    }
  }
  return lost
}
