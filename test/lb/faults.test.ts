/** Fault classification (src/lb/faults.ts): pure rules, tested with the errors undici and the LB raise. */
import { describe, expect, it } from 'vitest'
import { ClientTimeoutError, RequestBodyTooLargeError } from '../../src/lb/errors.js'
import { classify, isGatewayFailure, isUpstreamError, stageOf } from '../../src/lb/faults.js'
import type { RetryContext } from '../../src/lb/retry.js'

/** An error as undici or Node reports it: a message and a code. */
const coded = (code: string, message = code) => Object.assign(new Error(message), { code })

const GET: RetryContext = { method: 'GET', hasBody: false, replayable: true, idempotencyKey: false }
const POST: RetryContext = { method: 'POST', hasBody: true, replayable: true, idempotencyKey: false }
const POST_KEYED: RetryContext = { ...POST, idempotencyKey: true }
/** A body too large to hold, streamed: it cannot be sent twice. */
const POST_KEYED_STREAMED: RetryContext = { ...POST_KEYED, replayable: false }

describe('fault classification', () => {
  it('a connect failure (refused, connect timeout) is retried for every method and counts against the upstream', () => {
    for (const code of ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH'])
      for (const request of [GET, POST, POST_KEYED_STREAMED])
        expect(classify(coded(code), 'connecting', request), `${code} ${request.method}`).toEqual({
          kind: 'connect',
          stage: 'connect',
          retryable: true,
          upstreamFault: true,
        })
  })

  it('a reset before any response byte is retried only for requests safe to send twice', () => {
    const reset = coded('ECONNRESET')
    const retryable = (request: RetryContext) => classify(reset, 'sent', request).retryable
    expect(retryable(GET)).toBe(true)
    for (const method of ['HEAD', 'OPTIONS', 'PUT', 'DELETE'])
      expect(retryable({ ...GET, method }), method).toBe(true)
    expect(retryable({ ...GET, method: 'PATCH' })).toBe(false)
    expect(retryable({ ...GET, method: 'POST' })).toBe(false)
    expect(retryable({ ...GET, method: 'POST', idempotencyKey: true })).toBe(true)
    // Never a POST without Idempotency-Key; with one, only when its body is held whole.
    expect(retryable(POST)).toBe(false)
    expect(retryable(POST_KEYED)).toBe(true)
    expect(retryable(POST_KEYED_STREAMED)).toBe(false)
    expect(retryable({ ...POST, method: 'PUT' })).toBe(true)
    expect(retryable({ ...POST, method: 'PATCH' })).toBe(false)
    expect(classify(reset, 'sent', GET)).toEqual({
      kind: 'no-response',
      stage: 'sent',
      retryable: true,
      upstreamFault: true,
    })
  })

  it('a closed socket or a response that cannot be parsed, before the headers, counts against the upstream', () => {
    for (const code of ['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'HPE_INVALID_CONSTANT', 'EPIPE'])
      expect(classify(coded(code), 'sent', POST), code).toMatchObject({
        kind: 'no-response',
        retryable: false,
        upstreamFault: true,
      })
  })

  it('no response headers within the headers timeout: never retried, counts against the upstream', () => {
    for (const request of [GET, POST_KEYED])
      expect(classify(coded('UND_ERR_HEADERS_TIMEOUT'), 'sent', request)).toEqual({
        kind: 'headers-timeout',
        stage: 'sent',
        retryable: false,
        upstreamFault: true,
      })
  })

  it('a response cut after its headers (reset mid-body, body timeout) is never retried nor counted', () => {
    for (const err of [
      coded('ECONNRESET'),
      coded('UND_ERR_BODY_TIMEOUT'),
      new ClientTimeoutError('the client sent nothing for 30 s'),
    ])
      expect(classify(err, 'streaming', GET)).toEqual({
        kind: 'response-cut',
        stage: 'response',
        retryable: false,
        upstreamFault: false,
      })
  })

  it("the client's own faults are answered with their code and never count against the upstream", () => {
    const slow = new ClientTimeoutError('the client sent nothing for 30 s')
    expect(classify(slow, 'sent', POST)).toEqual({
      kind: 'client',
      stage: 'sent',
      retryable: false,
      upstreamFault: false,
      clientError: slow,
    })
    const large = new RequestBodyTooLargeError(1024)
    expect(classify(large, 'connecting', POST).clientError).toBe(large)
    const mismatch = coded('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'body length differs')
    const fault = classify(mismatch, 'sent', POST)
    expect(fault).toMatchObject({ kind: 'client', retryable: false, upstreamFault: false })
    expect(fault.clientError?.code).toBe('FLEET_E_LB_BAD_REQUEST')
    expect(fault.clientError?.cause).toBe(mismatch)
  })

  it('an error without a code is retried by the same rules but does not count against the upstream', () => {
    const plain = new Error('something else')
    expect(isUpstreamError(plain)).toBe(false)
    expect(classify(plain, 'connecting', POST)).toMatchObject({
      kind: 'connect',
      retryable: true,
      upstreamFault: false,
    })
    expect(classify(plain, 'sent', GET)).toMatchObject({
      kind: 'no-response',
      retryable: true,
      upstreamFault: false,
    })
  })

  it('a gateway answer (502, 503, 504) counts against the upstream; a 500 or a 4xx does not', () => {
    for (const status of [502, 503, 504]) expect(isGatewayFailure(status), String(status)).toBe(true)
    for (const status of [200, 304, 400, 404, 429, 500, 501])
      expect(isGatewayFailure(status), String(status)).toBe(false)
  })

  it('the stage of a try state, as the retry rules and the retries metric name it', () => {
    expect(stageOf('connecting')).toBe('connect')
    expect(stageOf('sent')).toBe('sent')
    expect(stageOf('streaming')).toBe('response')
  })
})
