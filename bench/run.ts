/**
 * `npm run bench [-- NAME ...]`: runs every benchmark scenario (bench/<name>.ts), or the named ones, one after
 * the other (they would disturb each other's timings if run at once). Each prints its own figures beside its
 * anchors; this runner builds dist once first (the scenarios skip their own build: BENCH_BUILT=1), sequences
 * them and reports which failed and how long each took.
 *
 * `npm run bench:smoke [-- NAME ...]` (`--smoke`): the same with BENCH_SMOKE=1 for each scenario: tiny numbers,
 * every part, checks kept (bench/lib/smoke.ts); CI runs it. A scenario that has not ended after BENCH_TIMEOUT
 * seconds (smoke: 300, else none) is stopped, with every process it started, and counts as failed.
 *
 * Every bench/*.ts but this file is a scenario: a new one is picked up without being listed here.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(dir)
const all = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.replace(/\.ts$/, ''))
  .sort()
const args = process.argv.slice(2)
const smoke = args.includes('--smoke')
const wanted = args.filter((a) => a !== '--smoke')
const unknown = wanted.filter((w) => !all.includes(w))
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; there are: ${all.join(', ')}\n`)
  process.exit(2)
}
const timeoutS = Number(process.env.BENCH_TIMEOUT ?? (smoke ? 300 : 0))
const env: NodeJS.ProcessEnv = { ...process.env, BENCH_BUILT: '1' }
if (smoke) env.BENCH_SMOKE = '1'

let current: ChildProcess | undefined
/** Signals the scenario and everything it started (its own process group). */
const signalGroup = (signal: NodeJS.Signals) => {
  if (current?.pid === undefined) return
  try {
    process.kill(-current.pid, signal)
  } catch {}
}
process.on('SIGINT', () => {
  signalGroup('SIGINT')
  process.exit(130)
})
process.on('SIGTERM', () => {
  signalGroup('SIGTERM')
  process.exit(143)
})

/** Runs one scenario; resolves with its exit code (or a reason it has none). */
function runScenario(name: string): Promise<string | number> {
  return new Promise((resolve) => {
    // Its own process group, so that a timeout stops the web servers, proxies and stores it started too.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(dir, `${name}.ts`)], {
      stdio: 'inherit',
      env,
      detached: true,
    })
    current = child
    let timedOut = false
    const timer =
      timeoutS > 0
        ? setTimeout(() => {
            timedOut = true
            process.stderr.write(`\nbench/${name}.ts: no end after ${timeoutS} s, stopping it\n`)
            signalGroup('SIGTERM')
            setTimeout(() => signalGroup('SIGKILL'), 10_000).unref()
          }, timeoutS * 1000)
        : undefined
    child.on('error', (err) => resolve(err.message))
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      // Stragglers (children of a scenario that died) go with it.
      signalGroup('SIGTERM')
      current = undefined
      resolve(timedOut ? `timed out after ${timeoutS} s` : (code ?? `killed by ${signal}`))
    })
  })
}

const t0 = Date.now()
if (process.env.BENCH_BUILT !== '1') {
  process.stdout.write('building (npm run build) ...\n')
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) {
    process.stderr.write('npm run build failed\n')
    process.exit(1)
  }
}
const results: { name: string; result: string | number; seconds: number }[] = []
for (const name of wanted.length > 0 ? wanted : all) {
  process.stdout.write(`\n##### bench/${name}.ts${smoke ? ' (smoke)' : ''}\n`)
  const start = Date.now()
  const result = await runScenario(name)
  results.push({ name, result, seconds: (Date.now() - start) / 1000 })
}
process.stdout.write(
  `\n##### ${smoke ? 'smoke run' : 'benchmarks'}: ${((Date.now() - t0) / 1000).toFixed(0)} s in all\n`,
)
for (const r of results)
  process.stdout.write(
    `  ${r.name.padEnd(12)} ${r.seconds.toFixed(0).padStart(4)} s  ${r.result === 0 ? 'ok' : `FAILED (${typeof r.result === 'number' ? `exit ${r.result}` : r.result})`}\n`,
  )
const failed = results.filter((r) => r.result !== 0).map((r) => r.name)
if (failed.length > 0) {
  process.stderr.write(`\nfailed: ${failed.join(', ')}\n`)
  process.exit(1)
}
