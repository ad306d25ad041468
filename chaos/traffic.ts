/**
 * The steady mixed load the faults are injected under, through the load balancer: 4 anonymous catalog
 * readers on a warmed set of products, 1 logged-in reader, 3 logged-in writers of cart quantities and
 * reviews, 1 admin uploading images (thumbnail jobs), 1 visitor submitting chaos jobs. It remembers every
 * acknowledged write and accepted job, for the checks after the run.
 */
import { randomUUID } from 'node:crypto'
import sharp from 'sharp'
import { type Client, cookieOf, json } from './client.js'
import { ADMIN, HOT_PRODUCTS } from './options.js'
import { sleep } from './wait.js'

/** A logged-in user whose acknowledged writes are checked after the run. */
export interface Writer {
  email: string
  cookie: string
  /** Cart: per product, the last acknowledged quantity and the quantities tried after it. */
  cart: Map<number, { acked: number; ackedAt: number; since: number[] }>
  reviews: { id: number; productId: number; at: number }[]
  nextReview: number
}

/** A job the API accepted (202): it must complete, its effect applied once. */
export interface AcceptedJob {
  id: string
  cookie: string
  at: number
  kind: 'chaos' | 'thumbnails'
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T
}

export class Traffic {
  readonly writers: Writer[] = []
  readonly jobs: AcceptedJob[] = []
  readonly #client: Client
  readonly #productIds: number[] = []
  #adminCookie = ''
  #visitorCookie = ''
  #png: Buffer = Buffer.alloc(0)
  #loading = false
  #loops: Promise<void>[] = []

  constructor(client: Client) {
    this.#client = client
  }

  /** Users and sessions (the admin, 3 writers), the catalog's product ids, and a warm cache. */
  async prepare(): Promise<void> {
    const client = this.#client
    this.#png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c63' } })
      .png()
      .toBuffer()
    this.#adminCookie = await client.login(ADMIN.email, ADMIN.password)
    for (let i = 0; i < 3; i++) {
      const email = `chaos-writer-${i}-${Date.now()}@example.com`
      const password = 'chaos writer password'
      const a = await client.call(undefined, 'POST', '/api/users', json({ email, password }))
      if (a.status !== 201) throw new Error(`account ${email}: ${a.status} ${a.code}`)
      this.writers.push({
        email,
        cookie: await client.login(email, password),
        cart: new Map(),
        reviews: [],
        nextReview: i * 90,
      })
    }
    for (let cursor: string | null = '', n = 0; cursor !== null && n < 10; n++) {
      const page = await client.call(
        undefined,
        'GET',
        `/api/products?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      )
      const body = page.body as { items: { id: number }[]; nextCursor: string | null }
      this.#productIds.push(...body.items.map((p) => p.id))
      cursor = body.nextCursor && encodeURIComponent(body.nextCursor)
    }
    for (const id of this.#productIds.slice(0, HOT_PRODUCTS))
      await client.call(undefined, 'GET', `/api/products/${id}`)
  }

  /** Starts every loop of the load. */
  start(): void {
    this.#loading = true
    this.#loops = [
      ...Array.from({ length: 4 }, () => this.#catalogReader()),
      this.#sessionReader(),
      ...this.writers.map((w) => this.#writerLoop(w)),
      this.#uploader(),
      this.#submitter(),
    ]
  }

  /** Stops the load; resolves once every loop's last request has its answer. */
  async stop(): Promise<void> {
    this.#loading = false
    await Promise.all(this.#loops)
  }

  async #catalogReader(): Promise<void> {
    while (this.#loading) {
      const r = Math.random()
      const url =
        r < 0.5
          ? `/api/products/${pick(this.#productIds.slice(0, HOT_PRODUCTS))}`
          : r < 0.85
            ? '/api/products?limit=10'
            : '/api/categories'
      await this.#client.call('catalog', 'GET', url)
      await sleep(5)
    }
  }

  async #sessionReader(): Promise<void> {
    while (this.#loading) {
      const w = pick(this.writers)
      await this.#client.call('session', 'GET', Math.random() < 0.5 ? '/api/me' : '/api/cart', {
        headers: { cookie: w.cookie },
      })
      await sleep(20)
    }
  }

  async #writerLoop(w: Writer): Promise<void> {
    let quantity = 1
    while (this.#loading) {
      if (Math.random() < 0.9) {
        const productId = pick(this.#productIds.slice(0, 20))
        const q = quantity++
        const entry = w.cart.get(productId) ?? { acked: 0, ackedAt: 0, since: [] }
        w.cart.set(productId, entry)
        entry.since.push(q)
        const a = await this.#client.call(
          'write',
          'PUT',
          `/api/cart/items/${productId}`,
          json({ quantity: q }, w.cookie),
        )
        if (a.status === 200) {
          entry.acked = q
          entry.ackedAt = Date.now()
          entry.since = []
        }
      } else {
        // One review per user and product: each writer walks the catalog once (a repeat would be a 409).
        if (w.nextReview >= this.#productIds.length) continue
        const productId = this.#productIds[w.nextReview++] as number
        const a = await this.#client.call(
          'write',
          'POST',
          `/api/products/${productId}/reviews`,
          json({ rating: 1 + (productId % 5), body: `chaos review by ${w.email}` }, w.cookie),
        )
        if (a.status === 201) w.reviews.push({ id: (a.body as { id: number }).id, productId, at: Date.now() })
      }
      await sleep(40)
    }
  }

  async #uploader(): Promise<void> {
    while (this.#loading) {
      const productId = pick(this.#productIds.slice(HOT_PRODUCTS))
      const a = await this.#client.call('upload', 'PUT', `/api/products/${productId}/image`, {
        headers: { 'content-type': 'image/png', cookie: this.#adminCookie, 'idempotency-key': randomUUID() },
        body: this.#png,
      })
      if (a.status === 202)
        this.jobs.push({
          id: (a.body as { id: string }).id,
          cookie: this.#adminCookie,
          at: Date.now(),
          kind: 'thumbnails',
        })
      await sleep(1_500)
    }
  }

  async #submitter(): Promise<void> {
    while (this.#loading) {
      const a = await this.#client.call(
        'job',
        'POST',
        '/chaos/jobs',
        json({ ms: 300, steps: 5 }, this.#visitorCookie, { 'idempotency-key': randomUUID() }),
      )
      if (a.status === 202) {
        this.#visitorCookie = cookieOf(a, this.#visitorCookie)
        this.jobs.push({
          id: (a.body as { id: string }).id,
          cookie: this.#visitorCookie,
          at: Date.now(),
          kind: 'chaos',
        })
      }
      await sleep(400)
    }
  }
}
