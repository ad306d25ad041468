/**
 * The Node peer in bench/lb.ts: @fastify/http-proxy (undici underneath) in front of the same backends,
 * alternating between them per request. Usage: tsx bench/lib/fastify-proxy.ts PORT UPSTREAM1 UPSTREAM2
 */
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const [port, ...upstreams] = process.argv.slice(2)
let next = 0
const app = Fastify({ logger: false, bodyLimit: 2 * 1024 ** 3 })
// Stream request bodies through instead of parsing them.
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
await app.register(proxy, {
  upstream: upstreams[0],
  replyOptions: {
    getUpstream: () => {
      next = (next + 1) % upstreams.length
      return upstreams[next]
    },
  },
})
await app.listen({ port: Number(port), host: '127.0.0.1' })
process.stdout.write(`fastify-proxy listening on ${port}\n`)
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
