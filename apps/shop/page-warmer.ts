/**
 * The product-page warmer: after a recommendations run, a worker stores the product pages' cached responses
 * (built from the cached objects `ProductPage` and `RelatedProducts`, which it fills on the way) so the first
 * request for each is a hit. Installed by `fleet worker` (src/cli/worker.ts) through `setProductPageWarmer`;
 * best effort, like any cache fill.
 */

import type { Cache } from '@fleet-stack/fleet'
import { setProductPageWarmer, type WarmProductPages } from './recommendations.js'
import { productPageResponse } from './responses.js'

/** Pages assembled at once (each is a few small queries). */
const PARALLEL = 4

/**
 * A warmer that builds every page's response from the object cache and stores it (conditionally, like any
 * fill): objects already cached and valid cost one round trip each, missing ones are assembled.
 */
export function productPageWarmer(cache: Cache): WarmProductPages {
  return async ({ productIds, logger, signal }) => {
    let next = 0
    let warmed = 0
    const lane = async () => {
      while (next < productIds.length) {
        signal.throwIfAborted()
        const id = productIds[next++]
        if ((await cache.primeResponse(productPageResponse, id)).stored) warmed += 1
      }
    }
    const started = performance.now()
    await Promise.all(Array.from({ length: Math.min(PARALLEL, productIds.length) }, lane))
    logger.info(
      { pages: productIds.length, stored: warmed, ms: Math.round(performance.now() - started) },
      'product pages warmed',
    )
  }
}

/** Installs the warmer for this process (undefined removes it). */
export function installProductPageWarmer(cache: Cache | undefined): void {
  setProductPageWarmer(cache ? productPageWarmer(cache) : undefined)
}
