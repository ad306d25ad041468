import { setting } from '../define.js'

/** The web server runtime (`fleet web`). */
export const webSettings = {
  webHost: setting.string({
    env: 'FLEET_WEB_HOST',
    doc: 'Address a web server listens on (0.0.0.0 or :: for every interface: the load balancer then reaches it at the address it advertises, FLEET_WEB_ADVERTISE_URL).',
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
    doc: 'URL the load balancer (on this or another machine) uses to reach this web server, published in the registry. Unset: http://<FLEET_WEB_HOST>:<port>; when FLEET_WEB_HOST is 0.0.0.0 or ::, the first non-loopback IPv4 address of the machine (os.networkInterfaces() order, IPv6 when there is none; the choice is logged), and with none the server refuses to start (FLEET_E_REGISTRY_ADVERTISE_ADDRESS). A URL that points at loopback (127.x, ::1, localhost, or a name that resolves only to loopback) is refused the same way unless FLEET_WEB_HOST is loopback too.',
    protocols: ['http:'],
  }),
  bodyLimit: setting.bytes({
    env: 'FLEET_BODY_LIMIT',
    doc: 'Largest JSON request body a web server accepts (larger: 413).',
    default: '1mb',
  }),
  accessLog: setting.oneOf({
    env: 'FLEET_ACCESS_LOG',
    doc: "Which answers a web server writes an access-log line for (JSON, level info, to its own log): errors (4xx, 5xx, and any slower than 1 s, as HAProxy's `option dontlog-normal`); all (one line per request, serialized and written by the web server on every cached hit too); off. Request counts and latencies are in /metrics whatever this says.",
    default: 'errors',
    values: ['all', 'errors', 'off'] as const,
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
  loginMaxFailures: setting.int({
    env: 'FLEET_LOGIN_MAX_FAILURES',
    doc: 'Failed logins one account may have within FLEET_LOGIN_WINDOW; the next attempt answers 429 until the window ends (a success resets the count; 0: no limit).',
    default: 10,
    max: 1_000_000,
    unit: 'attempts',
  }),
  loginMaxFailuresPerAddress: setting.int({
    env: 'FLEET_LOGIN_MAX_FAILURES_PER_ADDRESS',
    doc: 'Failed logins one client address may have within FLEET_LOGIN_WINDOW, over all accounts; the next attempt answers 429 until the window ends (0: no limit).',
    default: 100,
    max: 1_000_000,
    unit: 'attempts',
  }),
  loginWindow: setting.duration({
    env: 'FLEET_LOGIN_WINDOW',
    doc: 'The window of the login limits: it starts at the first failure and ends this long after it.',
    default: '15m',
    min: '1s',
  }),
  hstsMaxAge: setting.duration({
    env: 'FLEET_HSTS_MAX_AGE',
    doc: 'Max-age of Strict-Transport-Security, sent only on requests that came over https (directly, or per X-Forwarded-Proto behind a trusted proxy); 0: never sent.',
    default: '365d',
  }),
}
