/** The chaos suite's progress lines, each stamped with the seconds since the run began. */

/** When the run began (epoch ms). */
export const t0 = Date.now()

/** Prints `msg` after the seconds since the run began. */
export function log(msg: string): void {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`)
}
