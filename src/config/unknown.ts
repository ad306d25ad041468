/**
 * `FLEET_*` environment variables that name no setting: a typo (`FLEET_WEBS=2`) would otherwise be ignored
 * without a word. The CLI warns about each, with the closest setting's name when one is close.
 */
import { type SettingSpecs, settingEntries } from './index.js'

/** Edit distance (insertions, deletions, substitutions) between two short names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]
}

/**
 * One warning per `FLEET_*` variable of `env` that is neither a setting of Fleet's nor of the app's (`extra`)
 * nor in `also` (variables read elsewhere), naming the closest setting when it is at most 3 edits away.
 * @example unknownSettingWarnings({ FLEET_WEBS: '2' }) // ['FLEET_WEBS is not a Fleet setting; did you mean FLEET_WEB? It is ignored.']
 */
export function unknownSettingWarnings(
  env: NodeJS.ProcessEnv,
  extra?: SettingSpecs,
  also: readonly string[] = [],
): string[] {
  const known = new Set([...settingEntries(extra).map(([, spec]) => spec.env), ...also])
  const out: string[] = []
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('FLEET_') || known.has(name)) continue
    let best: string | undefined
    let bestDistance = 4
    for (const k of known) {
      const d = distance(name, k)
      if (d < bestDistance) [best, bestDistance] = [k, d]
    }
    out.push(`${name} is not a Fleet setting${best ? `; did you mean ${best}?` : '.'} It is ignored.`)
  }
  return out
}
