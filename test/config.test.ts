import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { appSections } from '../scripts/config-sections.js'
import type { SettingSpec } from '../src/config/define.js'
import { parseBytes, parseDuration } from '../src/config/define.js'
import { ConfigError } from '../src/config/errors.js'
import { configToEnv, loadConfig, settings } from '../src/config/index.js'
import { renderSettingsReference } from '../src/config/reference.js'
import { unknownSettingWarnings } from '../src/config/unknown.js'

describe('config', () => {
  it('docs/configuration.md carries the current settings reference (npm run docs:config)', () => {
    const page = fs.readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
    expect(page).toContain(renderSettingsReference(appSections))
    for (const spec of Object.values(settings) as SettingSpec<unknown>[])
      expect(page).toContain(`\`${spec.env}\``)
  })

  it('every default parses, and every setting has a unique variable and a doc line', () => {
    const envs = new Set<string>()
    for (const spec of Object.values(settings) as SettingSpec<unknown>[]) {
      expect(envs.has(spec.env), spec.env).toBe(false)
      envs.add(spec.env)
      expect(spec.doc.length, spec.env).toBeGreaterThan(10)
      if (spec.default !== undefined) expect(() => spec.parse(spec.default!)).not.toThrow()
    }
    expect(() => loadConfig({ env: {} })).not.toThrow()
  })

  it('parses durations and sizes with units', () => {
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('10m')).toBe(600_000)
    expect(parseDuration('1500')).toBe(1500)
    expect(parseBytes('256mb')).toBe(256 * 1024 * 1024)
    expect(parseBytes('64kb')).toBe(65536)
    expect(() => parseDuration('soon')).toThrow(/duration/)
  })

  it('rejects a bad value naming the setting, the value and where it came from', () => {
    const attempt = () => loadConfig({ env: { FLEET_PORT: '80a' } })
    expect(attempt).toThrow(ConfigError)
    expect(attempt).toThrow('FLEET_PORT="80a" (from environment) is invalid: expected a whole number')
    try {
      loadConfig({ env: { FLEET_WEB: '1000' } })
      expect.unreachable()
    } catch (err) {
      expect((err as ConfigError).code).toBe('FLEET_E_CONFIG_INVALID')
      expect((err as ConfigError).setting).toBe('FLEET_WEB')
    }
    expect(() => loadConfig({ env: { REDIS_URL: 'http://x' } })).toThrow(
      /REDIS_URL.*redis: or rediss: or redis\+sentinel: or rediss\+sentinel: URL/,
    )
  })

  it('flags win over the environment, which wins over defaults; the result is frozen', () => {
    const config = loadConfig({ env: { FLEET_PORT: '9000', FLEET_WEB: '2' }, flags: { port: '9100' } })
    expect(config.port).toBe(9100)
    expect(config.webCount).toBe(2)
    expect(config.workerCount).toBe(1)
    expect(Object.isFrozen(config)).toBe(true)
  })

  it('configToEnv hands a child process the same resolved values', () => {
    const config = loadConfig({
      env: { FLEET_SESSION_TTL: '2h', FLEET_LB_UPSTREAMS: 'http://a:1,http://b:2' },
    })
    const again = loadConfig({ env: configToEnv(config) })
    expect(again).toEqual(config)
  })

  it('names each FLEET_* variable that is no setting, with the closest one, and nothing else', () => {
    const env = {
      FLEET_WEBS: '2',
      FLEET_WEB: '3',
      FLEET_SHOP_COLOUR: 'red',
      FLEET_TEST_REDIS_URL: 'redis://x',
      FLEET_ZZZZZZZZZZQ: '1',
      PATH: '/bin',
    }
    const extra = { shopColour: { ...settings.port, env: 'FLEET_SHOP_COLOUR' } }
    expect(unknownSettingWarnings(env, extra as never, ['FLEET_TEST_REDIS_URL'])).toEqual([
      'FLEET_WEBS is not a Fleet setting; did you mean FLEET_WEB? It is ignored.',
      'FLEET_ZZZZZZZZZZQ is not a Fleet setting. It is ignored.',
    ])
  })
})
