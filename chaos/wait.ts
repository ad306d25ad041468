/** Waiting in the chaos suite: a plain pause (the load's pacing, a fault's hold) and a bounded poll. */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` every `every` ms until it returns a value or `ms` passed (then undefined); a throw is "not yet". */
export async function until<T>(
  fn: () => Promise<T | undefined>,
  ms: number,
  every = 100,
): Promise<T | undefined> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    await sleep(every)
  }
  return undefined
}
