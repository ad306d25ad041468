import { setting } from '../define.js'

/** The load balancer (`fleet lb`, and the one `fleet up` runs). */
export const lbSettings = {
  port: setting.port({
    env: 'FLEET_PORT',
    doc: 'Public port of the load balancer.',
    default: 8080,
    flag: 'port',
    commands: ['up', 'lb'],
  }),
  lbHost: setting.string({
    env: 'FLEET_LB_HOST',
    doc: 'Address the load balancer listens on (0.0.0.0 for every interface).',
    default: '127.0.0.1',
    flag: 'host',
    commands: ['up', 'lb'],
  }),
  lbAdminPort: setting.port({
    env: 'FLEET_LB_ADMIN_PORT',
    doc: 'Admin port of the load balancer (/metrics, /status); never the public one. 0 picks a free port.',
    default: 9090,
    flag: 'admin-port',
    commands: ['up', 'lb'],
  }),
  lbUpstreams: setting.urls({
    env: 'FLEET_LB_UPSTREAMS',
    doc: 'Fixed upstream web servers (comma-separated). Unset: discovered from the registry in REDIS_URL.',
    protocols: ['http:'],
    flag: 'upstream',
    repeatable: true,
    commands: ['lb'],
  }),
}
