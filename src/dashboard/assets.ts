/**
 * The page's files: the HTML, script and style in `public/` beside this module (copied to dist by the
 * build), and uPlot's minified build and stylesheet read from its npm package. Read once, kept with a gzip
 * copy and an ETag; nothing comes from the network.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

export interface Asset {
  type: string
  body: Buffer
  gzip: Buffer
  etag: string
}

const require = createRequire(import.meta.url)

/** URL path (below /dashboard/) to file, and its content type. */
function sources(): Record<string, [string, string]> {
  const pub = (f: string) => fileURLToPath(new URL(`./public/${f}`, import.meta.url))
  return {
    '': [pub('index.html'), 'text/html; charset=utf-8'],
    'app.js': [pub('app.js'), 'text/javascript; charset=utf-8'],
    'charts.js': [pub('charts.js'), 'text/javascript; charset=utf-8'],
    'style.css': [pub('style.css'), 'text/css; charset=utf-8'],
    'vendor/uPlot.iife.min.js': [
      require.resolve('uplot/dist/uPlot.iife.min.js'),
      'text/javascript; charset=utf-8',
    ],
    'vendor/uPlot.min.css': [require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'],
  }
}

/** Loads every asset (throws at start when one is missing: a build that forgot to copy them). */
export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>()
  for (const [name, [file, type]] of Object.entries(sources())) {
    const body = readFileSync(file)
    out.set(name, {
      type,
      body,
      gzip: gzipSync(body, { level: 9 }),
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`,
    })
  }
  return out
}

/** Bytes of the page as a browser loads it: every asset, raw and gzipped. */
export function pageWeight(assets: Map<string, Asset>): { bytes: number; gzipBytes: number } {
  let bytes = 0
  let gzipBytes = 0
  for (const a of assets.values()) {
    bytes += a.body.length
    gzipBytes += a.gzip.length
  }
  return { bytes, gzipBytes }
}
