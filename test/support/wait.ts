/**
 * Waiting for something to happen in a test: poll a condition until it holds, bounded by a deadline, instead
 * of sleeping for a time it is hoped to take.
 */

/**
 * Polls `fn` until it returns a value that is not undefined (every `everyMs`, at most `timeoutMs`); a throw
 * counts as not yet, and the last one is named in the timeout's message.
 * @example await waitFor('the worker to be ready', async () => ((await fetch(url)).ok ? true : undefined))
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
