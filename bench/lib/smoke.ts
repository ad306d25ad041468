/**
 * What every scenario shares about how it runs: smoke mode and the errors that fail it.
 *
 * Smoke mode (`BENCH_SMOKE=1`, set for each scenario by `npm run bench:smoke`, i.e. `tsx bench/run.ts --smoke`):
 * every scenario runs all its parts with tiny numbers (one round, ~1 s runs, small seeds), so that the code
 * paths run in CI and a benchmark cannot rot unseen. Its figures mean nothing; its checks still hold.
 *
 * Errors, in either mode: an error answer, a body that differs, a process that died... is recorded with
 * `fail` (or thrown) and makes the scenario exit non-zero. A missed performance target is never an error:
 * it is printed as MISSED / NOT MET beside the figures.
 */

/** True under `BENCH_SMOKE=1`. */
export const SMOKE = process.env.BENCH_SMOKE === '1'

/**
 * A numeric knob: the environment variable `name` when set, else `smoke` in smoke mode, else `full`.
 * @example const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
 */
export function knob(name: string, full: number, smoke: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return SMOKE ? smoke : full
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${JSON.stringify(raw)}: want a number >= 0`)
  return n
}

const errors: string[] = []

/** Records an error (printed at once, and again at the end by `exitOnErrors`); the run goes on. */
export function fail(message: string): void {
  errors.push(message)
  process.stdout.write(`ERROR: ${message}\n`)
}

/** The errors recorded so far. */
export function failures(): readonly string[] {
  return errors
}

/** Prints the recorded errors, if any, and sets a non-zero exit code for them. */
export function exitOnErrors(scenario: string): void {
  if (errors.length === 0) return
  process.stdout.write(
    `\n${scenario}: ${errors.length} error(s):\n${errors.map((e) => `  - ${e}`).join('\n')}\n`,
  )
  process.exitCode = 1
}

/** A line saying the figures of a smoke run mean nothing, printed at the top of a scenario in smoke mode. */
export function smokeNote(scenario: string): void {
  if (SMOKE)
    process.stdout.write(
      `${scenario}: smoke mode (BENCH_SMOKE=1): tiny numbers, every part runs, figures mean nothing; errors fail\n`,
    )
}
