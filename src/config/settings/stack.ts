import { setting } from '../define.js'

/** The local stack that `fleet up` starts and supervises. */
export const stackSettings = {
  webCount: setting.int({
    env: 'FLEET_WEB',
    doc: 'Web server processes `fleet up` runs.',
    default: 3,
    min: 0,
    max: 64,
    unit: 'processes',
    flag: 'web',
    commands: ['up'],
  }),
  workerCount: setting.int({
    env: 'FLEET_WORKERS',
    doc: 'Worker processes `fleet up` runs.',
    default: 1,
    min: 0,
    max: 64,
    unit: 'processes',
    flag: 'workers',
    commands: ['up'],
  }),
  webBasePort: setting.port({
    env: 'FLEET_WEB_BASE_PORT',
    doc: 'Under `fleet up`, web server i listens on this port + i (0: each picks a free port).',
    default: 8081,
    flag: 'web-base-port',
    commands: ['up'],
  }),
  pgPort: setting.port({
    env: 'FLEET_PG_PORT',
    doc: 'Port of the embedded PostgreSQL that `fleet up` starts when DATABASE_URL is unset (0: a free one).',
    default: 5433,
    flag: 'pg-port',
    commands: ['up'],
  }),
  redisPort: setting.port({
    env: 'FLEET_REDIS_PORT',
    doc: 'Port of the store redis-server that `fleet up` starts when REDIS_URL is unset (0: a free one).',
    default: 6380,
    flag: 'redis-port',
    commands: ['up'],
  }),
  cacheRedisPort: setting.port({
    env: 'FLEET_CACHE_REDIS_PORT',
    doc: 'Port of the cache redis-server that `fleet up` starts when CACHE_REDIS_URL is unset (0: a free one).',
    default: 6381,
    flag: 'cache-redis-port',
    commands: ['up'],
  }),
  cacheMaxMemory: setting.bytes({
    env: 'FLEET_CACHE_MAXMEMORY',
    doc: 'maxmemory of the cache redis-server that `fleet up` starts (allkeys-lru evicts past it).',
    default: '256mb',
  }),
  restartBackoffMax: setting.duration({
    env: 'FLEET_RESTART_BACKOFF_MAX',
    doc: 'Longest wait before `fleet up` restarts a crashed process (the wait doubles from 250ms up to this).',
    default: '30s',
    min: '250ms',
  }),
  seedOnStart: setting.bool({
    env: 'FLEET_SEED',
    doc: "`fleet up` runs the app's seed when the app reports its data empty.",
    default: true,
    flag: 'seed',
    commands: ['up'],
  }),
}
