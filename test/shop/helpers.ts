/** Shared helpers of the shop tests: an app with the shop mounted, cookies, accounts and a small catalog. */
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import shopApp, { shopRoutes } from '../../apps/shop/index.js'
import { seedCatalog } from '../../apps/shop/seed.js'
import { fastJobEnv } from '../jobs/support.js'
import { createTestApp, type TestApp } from '../support/app.js'

/** The jobs tests' fast settings, with the shop as the app the worker runs (its job types, its tables). */
export const shopWorkerEnv: Record<string, string> = {
  ...fastJobEnv,
  FLEET_APP: fileURLToPath(new URL('../../apps/shop/index.ts', import.meta.url)),
}

export const ADMIN = { email: 'admin@example.test', password: 'admin-password-123' }

/** The shop on an isolated schema/prefix, with an admin account and (unless products: 0) a small catalog. */
export async function createShop(
  options: { products?: number; reviews?: number; env?: Record<string, string> } = {},
): Promise<TestApp> {
  // The shop's routes without the jobs API (its tests of jobs mount that themselves).
  const shop = await createTestApp([shopRoutes], {
    app: shopApp,
    env: { FLEET_ADMIN_EMAIL: ADMIN.email, FLEET_ADMIN_PASSWORD: ADMIN.password, ...options.env },
    beforeListen: shopApp.web?.beforeListen,
  })
  const products = options.products ?? 60
  if (products > 0) await seedCatalog(shop.deps.db, { products, reviews: options.reviews ?? 200, users: 20 })
  return shop
}

/** The value of the session cookie a response set, or undefined. */
export function sessionCookie(res: LightMyRequestResponse, name = 'fleet_sid'): string | undefined {
  return res.cookies.find((c) => c.name === name)?.value
}

/** The raw Set-Cookie header for the session cookie. */
export function setCookieHeader(res: LightMyRequestResponse, name = 'fleet_sid'): string | undefined {
  const raw = res.headers['set-cookie']
  const all = Array.isArray(raw) ? raw : raw ? [raw] : []
  return all.find((c) => c.startsWith(`${name}=`))
}

/** A client that keeps the session cookie between requests, like a browser. */
export class Client {
  sid: string | undefined
  constructor(readonly app: FastifyInstance) {}

  async request(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method,
      url,
      payload: body === undefined ? undefined : (body as object),
      headers: { ...headers, ...(this.sid ? { cookie: `fleet_sid=${this.sid}` } : {}) },
    })
    const set = res.cookies.find((c) => c.name === 'fleet_sid')
    if (set) this.sid = set.maxAge === 0 || set.value === '' ? undefined : set.value
    return res
  }

  async login(email: string, password: string): Promise<LightMyRequestResponse> {
    return this.request('POST', '/api/session', { email, password })
  }
}

let counter = 0
/** Registers a fresh customer and returns a client logged in as them. */
export async function customer(app: FastifyInstance): Promise<{ client: Client; email: string; id: number }> {
  counter += 1
  const email = `customer-${counter}-${Math.random().toString(36).slice(2, 8)}@example.test`
  const password = 'a-long-enough-password'
  const client = new Client(app)
  const created = await client.request('POST', '/api/users', { email, password })
  if (created.statusCode !== 201) throw new Error(`sign-up failed: ${created.body}`)
  const res = await client.login(email, password)
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.body}`)
  return { client, email, id: created.json().id }
}

/** A client logged in as the admin. */
export async function admin(app: FastifyInstance): Promise<Client> {
  const client = new Client(app)
  const res = await client.login(ADMIN.email, ADMIN.password)
  if (res.statusCode !== 200) throw new Error(`admin login failed: ${res.body}`)
  return client
}
