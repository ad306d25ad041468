/**
 * The default app (the shop) as `fleet web` serves it has the jobs API, the image and recommendation routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp from '../../apps/shop/index.js'
import { createAppTest, type TestApp } from '../support/app.js'

describe('the application routes', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createAppTest(shopApp)
  })
  afterAll(async () => {
    await t?.close()
  })

  it('include the jobs, image and recommendation routes', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>
    }
    expect(Object.keys(doc.paths['/api/jobs/{id}'] ?? {}).sort()).toEqual(['delete', 'get'])
    expect(doc.paths['/api/jobs/{id}/events']).toHaveProperty('get')
    expect(doc.paths['/api/products/{id}/image']).toHaveProperty('put')
    expect(doc.paths['/api/products/{id}/image/{size}']).toHaveProperty('get')
    expect(doc.paths['/api/admin/recommendations']).toHaveProperty('post')
    expect(
      (
        await t.app.inject({
          method: 'GET',
          url: '/api/jobs/shop.thumbnails-0123456789abcdef0123456789abcdef',
        })
      ).statusCode,
    ).toBe(401)
  })
})
