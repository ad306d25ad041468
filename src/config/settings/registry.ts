import { setting } from '../define.js'

/** How instances announce themselves in the store Redis. */
export const registrySettings = {
  registryHeartbeat: setting.duration({
    env: 'FLEET_REGISTRY_HEARTBEAT',
    doc: 'How often an instance renews its registry entry.',
    default: '2s',
    min: '100ms',
  }),
  registryTtl: setting.duration({
    env: 'FLEET_REGISTRY_TTL',
    doc: "How long a registry entry lives without a heartbeat: a dead instance disappears after this (load balancers stop sending it traffic), and a dead worker's active jobs are then handed on by a live worker (within one more heartbeat).",
    default: '10s',
    min: '500ms',
  }),
}
