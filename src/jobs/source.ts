/**
 * Maps a module URL written with `.js` to the file that exists: `.js` in the built `dist/`, `.ts` when the
 * sources run directly (tsx, tests). Worker threads and job modules are loaded by URL, so both must work.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

/** `url` itself when it exists (or is not a file URL), else its `.ts` twin when that exists. */
export function resolveSource(url: URL): URL {
  if (url.protocol !== 'file:' || fs.existsSync(fileURLToPath(url))) return url
  if (url.pathname.endsWith('.js')) {
    const ts = new URL(url.href.replace(/\.js$/, '.ts'))
    if (fs.existsSync(fileURLToPath(ts))) return ts
  }
  return url
}
