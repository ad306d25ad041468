/** One try's state machine (src/lb/try.ts): its moves, and what it reports of undici's callbacks. */
import { describe, expect, it } from 'vitest'
import { TRY_MOVES, Try, type TryOwner, type TryState } from '../../src/lb/try.js'
import type { Upstream } from '../../src/lb/upstream.js'

/** An owner that records what the try reports and, like the Exchange, moves it on connect and headers. */
function recorder(): TryOwner & { events: string[] } {
  const events: string[] = []
  return {
    events,
    connected(t) {
      events.push(`connected in ${t.state}`)
      if (t.state === 'connecting') t.moveTo('sent')
    },
    headers(t, status) {
      events.push(`headers ${status}`)
      return t.moveTo('streaming')
    },
    data: () => true,
    complete(t) {
      events.push(`complete, now ${t.state}`)
    },
    error(t, from, err) {
      events.push(`error ${err.message} from ${from}, now ${t.state}`)
    },
  }
}

const upstream = { origin: 'http://127.0.0.1:1' } as Upstream

describe('try state machine', () => {
  it('every state is reachable from connecting, and only done, failed and aborted are final', () => {
    const seen = new Set<TryState>(['connecting'])
    for (const from of seen) for (const to of TRY_MOVES[from]) seen.add(to)
    expect([...seen].sort()).toEqual(Object.keys(TRY_MOVES).sort())
    const final = (Object.keys(TRY_MOVES) as TryState[]).filter((s) => TRY_MOVES[s].length === 0)
    expect(final.sort()).toEqual(['aborted', 'done', 'failed'])
    // A response completes only after it started; a cancelled try only ends.
    expect((Object.keys(TRY_MOVES) as TryState[]).filter((s) => TRY_MOVES[s].includes('done'))).toEqual([
      'streaming',
    ])
    expect(TRY_MOVES.cancelled).toEqual(['aborted'])
  })

  it('a try that answers: connecting, sent, streaming, done', () => {
    const owner = recorder()
    const t = new Try(owner, upstream, null)
    expect(t.state).toBe('connecting')
    t.onConnect(() => {})
    expect(t.state).toBe('sent')
    expect(t.onHeaders(200, [], () => {}, 'OK')).toBe(true)
    expect(t.state).toBe('streaming')
    expect(t.ended).toBe(false)
    t.onComplete()
    expect(t.state).toBe('done')
    expect(t.ended).toBe(true)
    // Undici reports nothing after the last callback; if it did, the owner would not hear of it.
    t.onError(new Error('late'))
    expect(owner.events).toEqual(['connected in connecting', 'headers 200', 'complete, now done'])
  })

  it('a failed try reports the state it failed in', () => {
    const owner = recorder()
    const t = new Try(owner, upstream, null)
    t.onError(new Error('refused'))
    expect(t.state).toBe('failed')
    expect(owner.events).toEqual(['error refused from connecting, now failed'])
  })

  it('a try cancelled before its connection is aborted once it connects, and ends as aborted', () => {
    const owner = recorder()
    const t = new Try(owner, upstream, null)
    const lost = new Error('another try answered first')
    t.cancel(lost)
    expect(t.state).toBe('cancelled')
    const aborts: (Error | undefined)[] = []
    t.onConnect((err) => aborts.push(err))
    expect(t.state).toBe('cancelled')
    // The owner sees a cancelled try connect (the Exchange then aborts it); it never becomes sent.
    expect(owner.events).toEqual(['connected in cancelled'])
    t.cancel(lost)
    expect(aborts).toEqual([lost])
    t.onError(lost)
    expect(t.state).toBe('aborted')
    expect(owner.events.at(-1)).toBe('error another try answered first from cancelled, now aborted')
  })

  it('no move that TRY_MOVES does not list', () => {
    const t = new Try(recorder(), upstream, null)
    expect(t.moveTo('streaming')).toBe(false)
    expect(t.moveTo('done')).toBe(false)
    expect(t.state).toBe('connecting')
    expect(t.moveTo('failed')).toBe(true)
    for (const to of Object.keys(TRY_MOVES) as TryState[]) expect(t.moveTo(to), to).toBe(false)
  })
})
