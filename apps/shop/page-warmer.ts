/**
 * The product-page warmer: after a recommendations run, a worker assembles the product pages into the object
 * cache (`ProductPage` and `RelatedProducts`) so the first request for each is a hit. Installed by
 * `fleet worker` (src/cli/worker.ts) through `setProductPageWarmer`; best effort, like any cache fill.
 */

import type { Cache } from 'fleet'
import { ProductPage, RelatedProducts } from './objects.js'
import { setProductPageWarmer, type WarmProductPages } from './recommendations.js'

/** Pages assembled at once (each is a few small queries). */
const PARALLEL = 4

/**
 * A warmer that reads every page through the cache: a page already cached and valid costs one round trip,
 * a missing or invalidated one is assembled and stored (conditionally, like any fill).
 */
export function productPageWarmer(cache: Cache): WarmProductPages {
  return async ({ productIds, logger, signal }) => {
    let next = 0
    let warmed = 0
    const lane = async () => {
      while (next < productIds.length) {
        signal.throwIfAborted()
        const id = productIds[next++]
        const [page, related] = await Promise.all([
          cache.get(ProductPage, id),
          cache.get(RelatedProducts, id),
        ])
        if (page.status === 'MISS' || related.status === 'MISS') warmed += 1
      }
    }
    const started = performance.now()
    await Promise.all(Array.from({ length: Math.min(PARALLEL, productIds.length) }, lane))
    logger.info(
      { pages: productIds.length, assembled: warmed, ms: Math.round(performance.now() - started) },
      'product pages warmed',
    )
  }
}

/** Installs the warmer for this process (undefined removes it). */
export function installProductPageWarmer(cache: Cache | undefined): void {
  setProductPageWarmer(cache ? productPageWarmer(cache) : undefined)
}
