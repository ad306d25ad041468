/**
 * One Server-Sent Events stream of one job. Without Last-Event-ID the client first gets a `state` event
 * (the job as GET shows it); with it, the events it missed. Then every event as it happens, until the job
 * ends (`completed`, `failed` or `cancelled`, after which the server closes the stream) or the client leaves.
 * Each event's `id` is its entry id in the queue's event stream, so a reconnect resumes where it stopped.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { JobClient, JobView, Owner } from './client.js'
import { compareIds, type JobEvent, type JobEventHub, TERMINAL } from './events.js'

const STREAM_ID = /^\d{1,20}-\d{1,20}$/

export interface StreamOptions {
  view: JobView
  owner: Owner
  client: JobClient
  hub: JobEventHub
  heartbeatMs: number
}

export async function streamJobEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  { view, owner, client, hub, heartbeatMs }: StreamOptions,
): Promise<void> {
  const header = request.headers['last-event-id']
  const resumeFrom = typeof header === 'string' && STREAM_ID.test(header.trim()) ? header.trim() : undefined
  const key = client.eventsKey(view.type)
  const res = reply.raw
  reply.hijack()
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-served-by': String(reply.getHeader('x-served-by') ?? ''),
    'x-request-id': request.id,
  })
  res.write('retry: 1000\n\n')

  let cursor = resumeFrom ?? '0-0'
  let ended = false
  let buffering = true
  const buffered: JobEvent[] = []
  let unfollow: () => void = () => {}
  const heartbeat = setInterval(() => res.write(': ping\n\n'), heartbeatMs)
  heartbeat.unref()

  const end = () => {
    if (ended) return
    ended = true
    clearInterval(heartbeat)
    unfollow()
    res.end()
  }
  request.raw.on('close', end)
  res.on('close', end)

  const send = (event: JobEvent, data: unknown) => {
    if (ended) return
    res.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(data)}\n\n`)
    if (TERMINAL.has(event.kind)) end()
  }
  const deliver = (event: JobEvent) => {
    if (compareIds(event.id, cursor) <= 0) return
    cursor = event.id
    send(event, { id: view.id, ...event.data })
  }
  const sendView = (v: JobView) =>
    send({ id: cursor, kind: TERMINAL.has(v.state) ? v.state : 'state', data: {} }, v)

  try {
    if (TERMINAL.has(view.state)) {
      if (!resumeFrom) cursor = await hub.lastId(key)
      return sendView(view)
    }
    unfollow = await hub.follow(key, view.id, (e) => (buffering ? buffered.push(e) : deliver(e)))
    if (resumeFrom) {
      for (const e of await hub.replay(key, view.id, resumeFrom)) deliver(e)
    } else {
      cursor = await hub.lastId(key)
      sendView(await client.get(view.id, owner))
    }
    buffering = false
    for (const e of buffered.splice(0)) deliver(e)
    if (ended) return
    // The stream may have been trimmed, or the end happened between the reads: settle with the view.
    const now = await client.get(view.id, owner)
    if (TERMINAL.has(now.state)) sendView(now)
  } catch (err) {
    request.log.warn({ err }, 'job event stream failed')
    end()
  }
}
