import { setting } from '../define.js'

/** Settings every process reads: where the stores are, logging, identity. */
export const coreSettings = {
  app: setting.string({
    env: 'FLEET_APP',
    doc: 'The application module to run (a file exporting `defineApp(...)`, .js or .ts). Unset: `fleet.config.{ts,mts,js,mjs}` in the working folder, else the built-in demo app.',
    flag: 'app',
    commands: ['up', 'web', 'worker', 'migrate', 'seed', 'jobs'],
  }),
  databaseUrl: setting.url({
    env: 'DATABASE_URL',
    doc: 'PostgreSQL connection URL. Unset under `fleet up`: an embedded PostgreSQL is started and used.',
    protocols: ['postgres:', 'postgresql:'],
    flag: 'database-url',
    commands: ['up', 'web', 'worker', 'migrate', 'seed'],
  }),
  dbSchema: setting.string({
    env: 'FLEET_DB_SCHEMA',
    doc: 'PostgreSQL schema that holds Fleet tables (created when missing); tests use one per run.',
    default: 'public',
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    hint: 'expected a lower-case SQL identifier (letters, digits, underscore)',
  }),
  dbPoolMax: setting.int({
    env: 'FLEET_DB_POOL_MAX',
    doc: 'Most PostgreSQL connections one process opens.',
    default: 10,
    min: 1,
    max: 1000,
    unit: 'connections',
  }),
  dbStatementTimeout: setting.duration({
    env: 'FLEET_DB_STATEMENT_TIMEOUT',
    doc: 'PostgreSQL statement_timeout for every query Fleet runs (0 disables): the server cancels a query that runs longer, including one a web server stopped waiting for.',
    default: '30s',
  }),
  dbConnectTimeout: setting.duration({
    env: 'FLEET_DB_CONNECT_TIMEOUT',
    doc: 'Longest wait to open a PostgreSQL connection or take one from a full pool before the request fails with 503 `FLEET_E_DB_UNAVAILABLE`.',
    default: '2s',
    min: '1ms',
  }),
  dbQueryTimeout: setting.duration({
    env: 'FLEET_DB_QUERY_TIMEOUT',
    doc: 'Longest wait for the answer to one query a web server runs through `db.query`/`db.transaction` (client-side, so a hung PostgreSQL becomes 503 `FLEET_E_DB_UNAVAILABLE` instead of a hang); 0 waits forever. Workers wait up to FLEET_DB_STATEMENT_TIMEOUT plus 5 s instead; migrations and start-up are not bounded by it.',
    default: '2s',
  }),
  redisUrl: setting.url({
    env: 'REDIS_URL',
    doc: 'The store Redis (sessions, job queues, registry): `redis://host:port`, or through Redis Sentinel `redis+sentinel://h1:26379,h2:26379/<master>` (more Sentinels after commas; `?db=N&sentinelPassword=...`; docs/operations.md, Redis Sentinel). Unset under `fleet up`: a redis-server is started.',
    protocols: ['redis:', 'rediss:', 'redis+sentinel:'],
    flag: 'redis-url',
    commands: ['up', 'web', 'worker', 'lb'],
  }),
  redisCommandTimeout: setting.duration({
    env: 'FLEET_REDIS_COMMAND_TIMEOUT',
    doc: 'Longest wait for one command on the store Redis (sessions, registry, job submissions) before it fails (a coded 503 to the client), so a hung Redis never hangs a request; 0 waits forever. Not applied to BullMQ’s blocking connections.',
    default: '1s',
  }),
  storeWaitReplicas: setting.int({
    env: 'FLEET_STORE_WAIT_REPLICAS',
    doc: 'Replicas of the store Redis that must confirm a write (`WAIT`) before Fleet acknowledges it to a client (a 202 for a job, a login, a session write); fewer within FLEET_STORE_WAIT_TIMEOUT answer 503 `FLEET_E_REDIS_NOT_REPLICATED`. 0: no wait (a single Redis); 1 with Sentinel and two replicas.',
    default: 0,
    min: 0,
    max: 16,
    unit: 'replicas',
  }),
  storeWaitTimeout: setting.duration({
    env: 'FLEET_STORE_WAIT_TIMEOUT',
    doc: 'Longest wait for FLEET_STORE_WAIT_REPLICAS replicas to confirm a write before it is answered with 503 instead.',
    default: '500ms',
    min: '1ms',
  }),
  cacheRedisUrl: setting.url({
    env: 'CACHE_REDIS_URL',
    doc: "The cache Redis (cached queries and objects). Unset: a second redis-server under `fleet up`; a web server or worker then uses REDIS_URL; a standalone `fleet lb` (whose dashboard shows the cache Redis's memory and evictions) shows it as not configured.",
    protocols: ['redis:', 'rediss:', 'redis+sentinel:'],
    flag: 'cache-redis-url',
    commands: ['up', 'web', 'worker', 'lb'],
  }),
  redisPrefix: setting.string({
    env: 'FLEET_REDIS_PREFIX',
    doc: 'Prefix of every Redis key Fleet writes, so several deployments (or tests) share one Redis.',
    default: 'fleet:',
    pattern: /^[A-Za-z0-9:_.-]{1,64}$/,
    hint: 'expected 1-64 characters from A-Z a-z 0-9 : _ . -',
  }),
  logLevel: setting.oneOf({
    env: 'FLEET_LOG_LEVEL',
    doc: 'Least severe log level written (JSON lines on stdout, or to FLEET_LOG_FILE).',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    flag: 'log-level',
    commands: ['up', 'web', 'worker', 'lb', 'migrate', 'seed'],
  }),
  logFile: setting.string({
    env: 'FLEET_LOG_FILE',
    doc: 'File the process appends its JSON log lines to itself (created when missing), through a 16 KB buffer written at least every second and at exit; lines at warn and above go to stderr too; SIGHUP reopens it (log rotation). Unset: JSON lines on stdout. `fleet up` sets it for each child: `<data dir>/logs/<name>.log`.',
  }),
  instanceId: setting.string({
    env: 'FLEET_INSTANCE_ID',
    doc: 'Name of this process in the registry, logs and X-Served-By. Unset: role-hostname-pid-random.',
    pattern: /^[A-Za-z0-9_.:-]{1,100}$/,
    hint: 'expected 1-100 characters from A-Z a-z 0-9 _ . : -',
  }),
  dataDir: setting.string({
    env: 'FLEET_DATA_DIR',
    doc: 'Folder of the local stack: embedded PostgreSQL and Redis data, the control socket.',
    default: './data',
    flag: 'data-dir',
    commands: ['up', 'status', 'restart'],
  }),
  shutdownTimeout: setting.duration({
    env: 'FLEET_SHUTDOWN_TIMEOUT',
    doc: 'How long a process waits for in-flight work to finish after SIGTERM before it exits anyway.',
    default: '10s',
  }),
}
