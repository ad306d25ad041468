import { setting } from '../define.js'

/** The live dashboard on the load balancer's admin port (`/dashboard`). */
export const dashboardSettings = {
  dashboard: setting.bool({
    env: 'FLEET_DASHBOARD',
    doc: 'Serve the live operations dashboard at /dashboard on the load balancer admin port (never the public one). It samples only while a page is open.',
    default: true,
  }),
  dashboardInterval: setting.duration({
    env: 'FLEET_DASHBOARD_INTERVAL',
    doc: 'How often the dashboard takes a snapshot (registry, metrics of every process, cache Redis, queues) and sends it to open pages.',
    default: '1s',
    min: '250ms',
  }),
  dashboardHistory: setting.duration({
    env: 'FLEET_DASHBOARD_HISTORY',
    doc: 'How far back the charts reach: the load balancer keeps this many seconds of chart points (a few numbers per snapshot), and keeps sampling this long after the last page closed.',
    default: '5m',
    min: '10s',
  }),
  dashboardToken: setting.string({
    env: 'FLEET_DASHBOARD_TOKEN',
    doc: 'Secret for the dashboard actions (retry a failed job): sent as `Authorization: Bearer <token>`. Unset: actions are taken only from loopback addresses.',
    pattern: /^[\x21-\x7e]{16,200}$/,
    hint: 'expected 16-200 visible ASCII characters',
  }),
  dashboardMaxClients: setting.int({
    env: 'FLEET_DASHBOARD_MAX_CLIENTS',
    doc: 'Most dashboard pages (live event streams) open at once; one more gets 503 FLEET_E_DASHBOARD_BUSY.',
    default: 20,
    min: 1,
    max: 1000,
    unit: 'clients',
  }),
}
