/**
 * Start-up and idle memory of the local stack (issue 2's figures), medians of ROUNDS runs:
 * - time from `fleet up` to the first 200 through the LB, on a fresh data folder (initdb + full default
 *   seed of 10,000 products / 50,000 reviews) and on a warm one; the same for `fleet up --app
 *   examples/hello/app.ts` (a TypeScript app loaded through tsx, its migration, no seed);
 * - resident memory of each process at idle (from `fleet status --json`);
 * - anchor: the same PostgreSQL and Redis started bare (scratch services), so the ratio shows what Fleet
 *   adds on top of its stores.
 * Run: `npx tsx bench/startup.ts` (or `npm run bench -- startup`; it builds first). Env: BENCH_ROUNDS (3;
 * ROUNDS also works), BENCH_IDLE_SECONDS (5). BENCH_SMOKE=1: 1 round, a 200-product seed, one web server, 1 s
 * of idle (bench/lib/smoke.ts). A stack that does not answer, or a process of it that crashed or restarted, makes it
 * exit non-zero.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { scratchUpEnv, startScratchServices } from '../src/stack/scratch.js'
import { build } from './lib/procs.js'
import { exitOnErrors, fail, knob, SMOKE, smokeNote } from './lib/smoke.js'

const ROUNDS = knob('BENCH_ROUNDS', Number(process.env.ROUNDS ?? 3), 1)
const IDLE_SECONDS = knob('BENCH_IDLE_SECONDS', 5, 1)
/** Smoke mode: a small catalog instead of the default 10,000 products / 50,000 reviews, one web server. */
const SEED: Record<string, string> = SMOKE
  ? { FLEET_SEED_PRODUCTS: '200', FLEET_SEED_REVIEWS: '500', FLEET_WEB: '1' }
  : {}
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`

/** What runs: the default app (the shop) or the hello example, and the page that proves it answers. */
const APPS = {
  shop: { args: [] as string[], probe: '/api/categories' },
  hello: {
    args: ['--app', fileURLToPath(new URL('../examples/hello/app.ts', import.meta.url))],
    probe: '/hello/en',
  },
}

/** Starts `fleet up` of `app`, resolves with the ms until the first 200 from the LB. */
async function upUntil200(
  env: Record<string, string>,
  app: keyof typeof APPS = 'shop',
): Promise<{ child: ChildProcess; ms: number }> {
  const t0 = performance.now()
  // The seed settings are the shop's: another app would warn that they are no setting of its.
  const own =
    app === 'shop'
      ? env
      : Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('FLEET_SEED_')))
  const child = spawn(process.execPath, [CLI, 'up', ...APPS[app].args], {
    env: own,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const deadline = Date.now() + 180_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fleet up exited with ${child.exitCode}`)
    const ok = await fetch(`http://127.0.0.1:${env.FLEET_PORT}${APPS[app].probe}`)
      .then((r) => r.status === 200)
      .catch(() => false)
    if (ok) return { child, ms: performance.now() - t0 }
    if (Date.now() > deadline) throw new Error('no 200 within 180 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
}

interface Row {
  name: string
  rss?: number
  state?: string
  restarts?: number
}

async function main(): Promise<void> {
  smokeNote('startup bench')
  build(fileURLToPath(new URL('../', import.meta.url)))
  if (!existsSync(CLI)) throw new Error(`the build did not produce ${CLI}`)
  process.stdout.write(
    `startup bench: ${ROUNDS} rounds, node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}\n`,
  )
  const fresh: number[] = []
  const warm: number[] = []
  const bare: number[] = []
  const helloFresh: number[] = []
  const helloWarm: number[] = []
  const rss = new Map<string, number[]>()
  for (let round = 0; round < ROUNDS; round++) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-bench-startup-'))
    await fs.chmod(dir, 0o755)
    try {
      const t0 = performance.now()
      const scratch = await startScratchServices({ name: 'bench-startup-bare' })
      bare.push(performance.now() - t0)
      await scratch.stop()

      const env = await scratchUpEnv(dir, SEED)
      const first = await upUntil200(env)
      fresh.push(first.ms)
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000)) // idle
      const report = JSON.parse(
        execFileSync(process.execPath, [CLI, 'status', '--json'], { env, encoding: 'utf8' }),
      ) as { rows: Row[] }
      for (const row of report.rows) {
        if (row.rss !== undefined) rss.set(row.name, [...(rss.get(row.name) ?? []), row.rss])
        if (row.state !== 'ready' || (row.restarts ?? 0) > 0)
          fail(`fleet status: ${row.name} is ${row.state} after ${row.restarts} restart(s)`)
      }
      if (report.rows.length === 0) fail('fleet status --json lists no processes')
      await stop(first.child)
      const second = await upUntil200(env)
      warm.push(second.ms)
      await stop(second.child)

      const helloEnv = await scratchUpEnv(path.join(dir, 'hello'), SEED)
      for (const times of [helloFresh, helloWarm]) {
        const hello = await upUntil200(helloEnv, 'hello')
        times.push(hello.ms)
        await stop(hello.child)
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
    process.stdout.write(
      `  round ${round + 1}: fresh ${(fresh[round] / 1000).toFixed(1)} s, warm ${(warm[round] / 1000).toFixed(1)} s; ` +
        `hello fresh ${(helloFresh[round] / 1000).toFixed(1)} s, warm ${(helloWarm[round] / 1000).toFixed(1)} s\n`,
    )
  }
  const b = median(bare)
  process.stdout.write(
    '\nfirst 200 through the LB (median)          time     vs bare PostgreSQL+Redis start\n',
  )
  process.stdout.write(`  anchor: bare PostgreSQL initdb + Redis      ${(b / 1000).toFixed(1)} s    1.00x\n`)
  process.stdout.write(
    `  fleet up, fresh data folder (with seed)   ${(median(fresh) / 1000).toFixed(1)} s    ${(median(fresh) / b).toFixed(2)}x\n`,
  )
  process.stdout.write(
    `  fleet up, warm data folder                ${(median(warm) / 1000).toFixed(1)} s    ${(median(warm) / b).toFixed(2)}x\n`,
  )
  process.stdout.write(
    `  fleet up --app hello, fresh data folder   ${(median(helloFresh) / 1000).toFixed(1)} s    ${(median(helloFresh) / b).toFixed(2)}x\n`,
  )
  process.stdout.write(
    `  fleet up --app hello, warm data folder    ${(median(helloWarm) / 1000).toFixed(1)} s    ${(median(helloWarm) / b).toFixed(2)}x\n`,
  )
  process.stdout.write('\nresident memory at idle (median)\n')
  for (const [name, values] of rss) process.stdout.write(`  ${name.padEnd(12)} ${mb(median(values))}\n`)
}

await main()
exitOnErrors('bench/startup.ts')
