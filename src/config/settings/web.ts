import { setting } from '../define.js'

/** The web server runtime (`fleet web`). */
export const webSettings = {
  webHost: setting.string({
    env: 'FLEET_WEB_HOST',
    doc: 'Address a web server listens on.',
    default: '127.0.0.1',
    flag: 'host',
    commands: ['web'],
  }),
  webPort: setting.port({
    env: 'FLEET_WEB_PORT',
    doc: 'Port a web server listens on (0 picks a free one; it is published in the registry).',
    default: 0,
    flag: 'port',
    commands: ['web'],
  }),
  webAdvertiseUrl: setting.url({
    env: 'FLEET_WEB_ADVERTISE_URL',
    doc: 'URL the load balancer uses to reach this web server. Unset: http://<host>:<port>.',
    protocols: ['http:'],
  }),
  bodyLimit: setting.bytes({
    env: 'FLEET_BODY_LIMIT',
    doc: 'Largest JSON request body a web server accepts (larger: 413).',
    default: '1mb',
  }),
  trustProxy: setting.bool({
    env: 'FLEET_TRUST_PROXY',
    doc: 'Trust X-Forwarded-* headers (true behind Fleet LB or another proxy).',
    default: true,
  }),
  drainDelay: setting.duration({
    env: 'FLEET_DRAIN_DELAY',
    doc: 'After SIGTERM, how long a web server keeps serving while unready, so load balancers see it leave first.',
    default: '1500ms',
  }),
  sessionCookie: setting.string({
    env: 'FLEET_SESSION_COOKIE',
    doc: 'Name of the session cookie.',
    default: 'fleet_sid',
    pattern: /^[A-Za-z0-9_-]{1,64}$/,
    hint: 'expected 1-64 characters from A-Z a-z 0-9 _ -',
  }),
  sessionTtl: setting.duration({
    env: 'FLEET_SESSION_TTL',
    doc: 'Idle lifetime of a session; every request that uses it starts the period again (rolling).',
    default: '24h',
    min: '1s',
  }),
}
