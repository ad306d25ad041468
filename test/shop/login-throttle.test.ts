/**
 * Login throttling through the shop's POST /api/session (issue #12, item 9): per account and per client
 * address, in the store Redis, so that every web server applies the same limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp, { shopRoutes } from '../../apps/shop/index.js'
import { loginThrottle } from '../../src/web/login-throttle.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { Client, createShop } from './helpers.js'

const PASSWORD = 'the right password'

async function signUp(shop: TestApp, email: string): Promise<void> {
  const res = await new Client(shop.app).request('POST', '/api/users', { email, password: PASSWORD })
  expect(res.statusCode, res.body).toBe(201)
}

function login(shop: TestApp, email: string, password: string, address = '203.0.113.7') {
  return shop.app.inject({
    method: 'POST',
    url: '/api/session',
    payload: { email, password },
    remoteAddress: address,
  })
}

describe('login throttling (defaults: 10 failures per account, 100 per address, 15 min)', () => {
  let shop: TestApp
  let second: TestApp
  beforeAll(async () => {
    shop = await createShop({ products: 0 })
    // A second web server on the same database and store Redis (same schema and key prefix).
    second = await createTestApp([shopRoutes], {
      app: shopApp,
      env: {
        FLEET_DB_SCHEMA: shop.deps.config.dbSchema,
        FLEET_REDIS_PREFIX: shop.deps.config.redisPrefix,
        FLEET_INSTANCE_ID: 'web-test-2',
      },
    })
  })
  afterAll(async () => {
    await second?.close()
    await shop?.close()
  })

  it('answers the 11th wrong password with 429 and Retry-After, then refuses the right one too', async () => {
    await signUp(shop, 'victim@example.test')
    for (let i = 1; i <= 10; i++) {
      // Alternate between the two servers: the count lives in Redis, not in either process.
      const res = await login(i % 2 ? shop : second, 'victim@example.test', `wrong guess ${i}`)
      expect(res.statusCode, `attempt ${i}: ${res.body}`).toBe(401)
      expect(res.json().error.code).toBe('FLEET_E_SHOP_INVALID_CREDENTIALS')
    }
    const eleventh = await login(shop, 'victim@example.test', 'wrong guess 11')
    expect(eleventh.statusCode).toBe(429)
    expect(eleventh.json().error).toMatchObject({
      code: 'FLEET_E_HTTP_LOGIN_THROTTLED',
      details: { scope: 'account' },
    })
    expect(eleventh.json().error.message).toMatch(
      /too many failed logins for this account; try again in \d+ s/,
    )
    const retryAfter = Number(eleventh.headers['retry-after'])
    expect(retryAfter).toBeGreaterThan(800)
    expect(retryAfter).toBeLessThanOrEqual(900)
    expect(eleventh.json().error.details.retryAfter).toBe(retryAfter)

    const right = await login(second, 'victim@example.test', PASSWORD)
    expect(right.statusCode).toBe(429)
    expect(right.headers['set-cookie']).toBeUndefined() // no session was made
    // From another address too: the account is what is throttled.
    expect((await login(shop, 'VICTIM@example.test', PASSWORD, '198.51.100.1')).statusCode).toBe(429)
    // Other accounts log in as before.
    await signUp(shop, 'bystander@example.test')
    expect((await login(shop, 'bystander@example.test', PASSWORD)).statusCode).toBe(200)
  })

  it('resets the account count on a success', async () => {
    await signUp(shop, 'typo@example.test')
    for (let i = 0; i < 9; i++) expect((await login(shop, 'typo@example.test', 'typo')).statusCode).toBe(401)
    expect((await login(shop, 'typo@example.test', PASSWORD)).statusCode).toBe(200)
    for (let i = 0; i < 10; i++) expect((await login(shop, 'typo@example.test', 'typo')).statusCode).toBe(401)
    expect((await login(shop, 'typo@example.test', 'typo')).statusCode).toBe(429)
  })

  it('throttles unknown emails the same way (it does not tell which accounts exist)', async () => {
    for (let i = 0; i < 10; i++) expect((await login(shop, 'nobody@example.test', 'x')).statusCode).toBe(401)
    expect((await login(shop, 'nobody@example.test', 'x')).statusCode).toBe(429)
  })

  it('documents the 429 in the OpenAPI document', async () => {
    const doc = (await shop.app.inject('/openapi.json')).json()
    expect(Object.keys(doc.paths['/api/session'].post.responses)).toContain('429')
  })
})

describe('login throttling per address', () => {
  let shop: TestApp
  beforeAll(async () => {
    shop = await createShop({ products: 0, env: { FLEET_LOGIN_MAX_FAILURES_PER_ADDRESS: '5' } })
  })
  afterAll(async () => {
    await shop?.close()
  })

  it('refuses an address that failed across many accounts, and no other address', async () => {
    await signUp(shop, 'real@example.test')
    for (let i = 0; i < 5; i++)
      expect((await login(shop, `spray-${i}@example.test`, 'password1', '192.0.2.50')).statusCode).toBe(401)
    const sixth = await login(shop, 'real@example.test', PASSWORD, '192.0.2.50')
    expect(sixth.statusCode).toBe(429)
    expect(sixth.json().error).toMatchObject({
      code: 'FLEET_E_HTTP_LOGIN_THROTTLED',
      details: { scope: 'address' },
    })
    expect(sixth.json().error.message).toMatch(/from this address/)
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0)
    expect((await login(shop, 'real@example.test', PASSWORD, '192.0.2.51')).statusCode).toBe(200)
  })
})

describe('login throttling window', () => {
  let shop: TestApp
  beforeAll(async () => {
    shop = await createShop({
      products: 0,
      env: { FLEET_LOGIN_MAX_FAILURES: '2', FLEET_LOGIN_WINDOW: '3s' },
    })
  })
  afterAll(async () => {
    await shop?.close()
  })

  it('lets the right password in once the window has passed', async () => {
    await signUp(shop, 'patient@example.test')
    expect((await login(shop, 'patient@example.test', 'nope')).statusCode).toBe(401)
    expect((await login(shop, 'patient@example.test', 'nope')).statusCode).toBe(401)
    const refused = await login(shop, 'patient@example.test', PASSWORD)
    expect(refused.statusCode).toBe(429)
    const retryAfter = Number(refused.headers['retry-after'])
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(3)
    // The window passes by the Redis clock that times it: its end moves a window earlier in Redis (as
    // test/web/login-throttle.test.ts does), instead of waiting for it.
    const [account] = loginThrottle(shop.deps).keys({ account: 'patient@example.test', address: '' })
    await shop.deps.redis.hincrby(account, 'reset', -shop.deps.config.loginWindow)
    expect((await login(shop, 'patient@example.test', PASSWORD)).statusCode).toBe(200)
  })
})
