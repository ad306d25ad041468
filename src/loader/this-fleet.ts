/** Registers src/loader/resolve-hook.ts: apps (and their CPU job modules, in threads) import this Fleet. */
import fs from 'node:fs'
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'

let registered = false

/**
 * Makes an app's `import '@fleet-stack/fleet'` resolve to this Fleet (src/loader/resolve-hook.ts), once per
 * thread. Sources run directly (tests) have no built hook and resolve the package by its own name.
 */
export function useThisFleet(): void {
  if (registered) return
  registered = true
  const hook = new URL('./resolve-hook.js', import.meta.url)
  if (!fs.existsSync(fileURLToPath(hook))) return
  register(hook, { data: { parentURL: new URL('../../package.json', import.meta.url).href } })
}
