/**
 * A module resolve hook (registered with `node:module`'s `register` by `useThisFleet`): an app's
 * `import '@fleet-stack/fleet'` (and its subpaths) resolves to the Fleet that runs the app, through that
 * Fleet's own `exports`, whether or not the app's folder installed a copy. One process then holds one Fleet
 * (one `defineApp`, one set of error classes), and an app file in a folder without node_modules still loads.
 */
import type { ResolveHookContext } from 'node:module'

/** The package name apps import (package.json `name`). */
const NAME = '@fleet-stack/fleet'

let fleetPackageJson: string | undefined

/** `data.parentURL`: the URL of the running Fleet's package.json. */
export async function initialize(data: { parentURL: string }): Promise<void> {
  fleetPackageJson = data.parentURL
}

type NextResolve = (specifier: string, context?: Partial<ResolveHookContext>) => Promise<{ url: string }>

export async function resolve(
  specifier: string,
  context: ResolveHookContext,
  next: NextResolve,
): Promise<{ url: string }> {
  if (fleetPackageJson && (specifier === NAME || specifier.startsWith(`${NAME}/`)))
    // Resolved as a self-reference from inside Fleet's package: its `exports` decide, as for any importer.
    return next(specifier, { ...context, parentURL: fleetPackageJson })
  return next(specifier, context)
}
