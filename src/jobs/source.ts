/**
 * Maps a module URL written with `.js` to the file that exists: `.js` in the built `dist/`, `.ts` when the
 * sources run directly (tsx, tests). Worker threads and job modules are loaded by URL, so both must work.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** `url` itself when it exists (or is not a file URL), else its `.ts` twin when that exists. */
export function resolveSource(url: URL): URL {
  if (url.protocol !== 'file:' || fs.existsSync(fileURLToPath(url))) return url
  if (url.pathname.endsWith('.js')) {
    const ts = new URL(url.href.replace(/\.js$/, '.ts'))
    if (fs.existsSync(fileURLToPath(ts))) return ts
  }
  return url
}

/** The file URL of a module given as a path (relative to `cwd`) or a `file:` URL, as users write them. */
export function moduleUrl(spec: string, cwd = process.cwd()): URL {
  return spec.startsWith('file:') ? new URL(spec) : pathToFileURL(path.resolve(cwd, spec))
}
