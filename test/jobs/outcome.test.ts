/** A job's coded error survives BullMQ's one-string failedReason: Fleet's codes and an app's own. */
import { describe, expect, it } from 'vitest'
import { JobPermanentError } from '../../src/jobs/errors.js'
import { decodeReason, encodeReason, toJobError } from '../../src/jobs/outcome.js'

describe('job outcome codes', () => {
  it.each([
    ['FLEET_E_JOBS_TIMEOUT', 'the job ran longer than 100 ms'],
    ['GUESTBOOK_E_LINK', 'links are not allowed: remove http://x'],
    ['SHOP_IMAGE_TOO_LARGE', 'multi\nline: message'],
  ])('%s round-trips', (code, message) => {
    expect(decodeReason(encodeReason({ code, message }))).toEqual({ code, message })
  })

  it('an app’s JobPermanentError keeps its own code', () => {
    const e = toJobError(new JobPermanentError('links are not allowed', 'GUESTBOOK_E_LINK'))
    expect(decodeReason(encodeReason(e))).toEqual({
      code: 'GUESTBOOK_E_LINK',
      message: 'links are not allowed',
    })
  })

  it.each(['job stalled more than allowable limit', 'ECONNREFUSED: connect failed', '', undefined])(
    'a reason without a code (%o) becomes FLEET_E_JOBS_FAILED',
    (reason) => {
      expect(decodeReason(reason).code).toBe('FLEET_E_JOBS_FAILED')
    },
  )
})
