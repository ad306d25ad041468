/** The settings reference as Markdown, one table per component; docs/configuration.md embeds it. */
import { flagOf, type SettingSpec } from './define.js'
import { settingGroups } from './index.js'

const TITLES: Record<keyof typeof settingGroups, string> = {
  core: 'Core (every process)',
  registry: 'Registry',
  web: 'Web servers (`fleet web`)',
  lb: 'Load balancer (`fleet lb`)',
  stack: 'Local stack (`fleet up`)',
  cache: 'Cache',
  jobs: 'Jobs and workers (`fleet worker`)',
  dashboard: 'Dashboard (`/dashboard` on the load balancer admin port)',
}

const cell = (s: string) => s.replace(/\|/g, '\\|')

/**
 * Fleet's settings, then `extra` sections (an application's own settings, e.g. the default app's), as
 * Markdown tables.
 */
export function renderSettingsReference(
  extra: readonly { title: string; specs: Readonly<Record<string, SettingSpec<unknown>>> }[] = [],
): string {
  const out: string[] = []
  const sections = [
    ...(Object.entries(settingGroups) as [keyof typeof settingGroups, object][]).map(([group, specs]) => ({
      title: TITLES[group],
      specs,
    })),
    ...extra,
  ]
  for (const { title, specs } of sections) {
    out.push(
      `### ${title}`,
      '',
      '| variable | flag | unit | default | what it does |',
      '| --- | --- | --- | --- | --- |',
    )
    for (const spec of Object.values(specs) as SettingSpec<unknown>[]) {
      const flag = spec.flag ? flagCell(spec) : ''
      const dflt = spec.default === undefined ? '(unset)' : `\`${spec.default === '' ? '""' : spec.default}\``
      out.push(`| \`${spec.env}\` | ${flag} | ${cell(spec.unit)} | ${dflt} | ${cell(spec.doc)} |`)
    }
    out.push('')
  }
  return out.join('\n').trimEnd()
}

/** `--name` (commands), one per name when a command calls the flag otherwise (`flagIn`). */
function flagCell(spec: SettingSpec<unknown>): string {
  const byName = new Map<string, string[]>()
  for (const c of spec.commands ?? []) {
    const name = flagOf(spec, c) as string
    byName.set(name, [...(byName.get(name) ?? []), c])
  }
  return [...byName].map(([name, commands]) => `\`--${name}\` (${commands.join(', ')})`).join(', ')
}
