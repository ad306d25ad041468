/**
 * Waiting for something to happen in a test: poll a condition until it holds, bounded by a deadline, instead
 * of sleeping for a time it is hoped to take. A wait whose length is the point (a fault held for a time, a
 * TTL outlived) stays a sleep, under a comment that opens with "fixed wait" and a colon, saying why: grep for
 * that to count them (at most 5 in test/, issue 18).
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

/**
 * waitFor for a condition that is true or false: polls `cond` until it is true (a throw counts as not yet).
 * @example await waitUntil('the child to be ready', () => child.state === 'ready', 10_000)
 */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  await waitFor(what, async () => ((await cond()) ? true : undefined), timeoutMs, everyMs)
}
