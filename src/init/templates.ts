/**
 * The files `fleet init` writes: a project whose app, test and README work as they are. Every one is a
 * function of the project's name and of the dependency spec of Fleet, so the test of `fleet init` can run
 * what it wrote.
 */

export interface ProjectInfo {
  /** npm package name of the project (lower-case; also the app's name, with `-` as is). */
  name: string
  /** What package.json depends on for Fleet: `^0.1.0`, or `file:/path/to/fleet` from a checkout. */
  fleetSpec: string
  /** Versions of the dev tools the project pins: the ones this Fleet is built and tested with. */
  tools: { tsx: string; typescript: string; typesNode: string }
}

/** Relative path -> contents. */
export function projectFiles(p: ProjectInfo): Record<string, string> {
  return {
    'package.json': `${JSON.stringify(packageJson(p), null, 2)}\n`,
    'fleet.config.ts': FLEET_CONFIG,
    'app.ts': appTs(p.name),
    'test/app.test.ts': TEST,
    'tsconfig.json': `${JSON.stringify(TSCONFIG, null, 2)}\n`,
    '.gitignore': 'node_modules/\ndata/\n',
    'README.md': readme(p.name),
  }
}

function packageJson(p: ProjectInfo) {
  return {
    name: p.name,
    version: '0.1.0',
    private: true,
    // Fleet apps are ES modules: a `.ts` file of a package without it loads as CommonJS.
    type: 'module',
    scripts: {
      start: 'fleet up',
      dev: 'fleet dev',
      test: 'node --import tsx --test --test-concurrency=1 test/*.test.ts',
      typecheck: 'tsc --noEmit',
    },
    dependencies: { '@fleet-stack/fleet': p.fleetSpec },
    devDependencies: {
      '@types/node': p.tools.typesNode,
      tsx: p.tools.tsx,
      typescript: p.tools.typescript,
    },
  }
}

const FLEET_CONFIG = `// The app every \`fleet\` command in this folder runs (fleet up, dev, migrate, status...).
export { default } from './app.js'
`

function appTs(name: string): string {
  return `/**
 * ${name}: notes, read through the query cache, and a job that makes one loud. \`npm run dev\` serves it at
 * http://localhost:8080 and reloads it when a file changes. Fleet's guide: node_modules/@fleet-stack/fleet/docs/guide.md
 */
import { accepted, defineApp, defineJob, defineQuery, jobClient, jobOwner, Text, Type } from '@fleet-stack/fleet'

/** The latest notes. A cached query: its rows come from Redis until a write to \`notes\` invalidates them. */
const latestNotes = defineQuery<{ id: number; text: string }, []>({
  name: '${name}.latest-notes',
  sql: 'SELECT id, text FROM notes ORDER BY id DESC LIMIT 20',
})

/** The heavy part runs in a worker (\`process\`); its result is stored once (\`commit\`), even when retried. */
const shout = defineJob({
  name: '${name.replace(/-/g, '')}.shout', // job type names: letters, digits and dots
  payload: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
  process: async (ctx) => ctx.payload.id,
  commit: async (tx, id) => {
    const { rows } = await tx.query<{ text: string }>('UPDATE notes SET text = upper(text) WHERE id = $1 RETURNING text', [id])
    return { id, text: rows[0]?.text ?? null }
  },
})

const NoteBody = Type.Object({ text: Text({ minLength: 1, maxLength: 500 }) })

export default defineApp({
  name: '${name}',
  migrations: [
    {
      id: '001_${name.replace(/[^a-z0-9]/g, '_')}_notes',
      up: 'CREATE TABLE notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, text text NOT NULL)',
    },
  ],
  queries: [latestNotes],
  jobs: [shout],
  routes: [
    async (app, deps) => {
      app.get('/', async () => ({ app: '${name}', try: ['GET /notes', 'POST /notes', 'POST /notes/:id/shout'] }))

      app.get('/notes', async (_req, reply) => {
        const { rows, status } = await deps.cache.run(latestNotes, [])
        return reply.header('x-cache', status).send({ notes: rows })
      })

      app.post('/notes', { schema: { body: NoteBody } }, async (req, reply) => {
        const { text } = req.body as { text: string }
        const { rows } = await deps.db.query('INSERT INTO notes (text) VALUES ($1) RETURNING id, text', [text])
        return reply.code(201).send(rows[0])
      })

      app.post<{ Params: { id: string } }>('/notes/:id/shout', async (req, reply) => {
        const owner = await jobOwner(req, { anonymous: true }) // this browser may follow /api/jobs/:id
        return accepted(reply, await jobClient(deps).submit(shout, { id: Number(req.params.id) }, owner))
      })
    },
  ],
})
`
}

const TEST = `// The app on real PostgreSQL and Redis, each test on its own schema and key prefix (see
// @fleet-stack/fleet/testing). Run: npm test
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type TestedApp, testApp } from '@fleet-stack/fleet/testing'
import app from '../app.js'

let t: TestedApp
before(async () => {
  t = await testApp(app, { worker: true })
})
after(() => t?.close())

const json = { 'content-type': 'application/json' }

test('a note written is read back through the cache', async () => {
  const created = await t.fetch('/notes', { method: 'POST', headers: json, body: JSON.stringify({ text: 'hello' }) })
  assert.equal(created.status, 201)
  const first = await t.fetch('/notes')
  assert.equal(first.headers.get('x-cache'), 'MISS')
  const again = await t.fetch('/notes')
  assert.equal(again.headers.get('x-cache'), 'HIT')
  assert.deepEqual((await again.json()).notes.map((n: { text: string }) => n.text), ['hello'])
})

test('a bad note is a 400 that names the field', async () => {
  const res = await t.fetch('/notes', { method: 'POST', headers: json, body: JSON.stringify({ text: '' }) })
  assert.equal(res.status, 400)
  assert.match(JSON.stringify(await res.json()), /text/)
})

test('a job runs in the worker and its result is followed to the end', async () => {
  const created = await t.fetch('/notes', { method: 'POST', headers: json, body: JSON.stringify({ text: 'quiet' }) })
  const { id } = await created.json()
  const started = await t.fetch(\`/notes/\${id}/shout\`, { method: 'POST' })
  assert.equal(started.status, 202)
  const cookie = (started.headers.get('set-cookie') ?? '').split(';')[0] // the job's owner: this client
  for (let i = 0; i < 100; i++) {
    const view = await (await t.fetch(started.headers.get('location') ?? '', { headers: { cookie } })).json()
    if (view.state === 'completed') return assert.deepEqual(view.result, { id, text: 'QUIET' })
    assert.notEqual(view.state, 'failed', JSON.stringify(view))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.fail('the job did not complete in 10 s')
})
`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  },
  include: ['*.ts', 'test'],
}

function readme(name: string): string {
  return `# ${name}

A service on Fleet (\`@fleet-stack/fleet\`): a load balancer, stateless web servers, PostgreSQL, Redis
(cache, sessions, job queues) and job workers, as one stack. Fleet's guide is
\`node_modules/@fleet-stack/fleet/docs/guide.md\`.

\`\`\`sh
npm run dev      # the whole stack on this machine; http://localhost:8080 reloads when a file changes
npm test         # the app's tests, on real PostgreSQL and Redis
npm start        # the same stack without watching (3 web servers, 1 worker); Ctrl-C stops it
\`\`\`

PostgreSQL comes embedded (npm); \`redis-server\` must be on the PATH (\`apt-get install redis-server\`).
The stack keeps its data in \`./data\`; \`npm test\` uses the running stack's servers when there is one,
else starts its own for the run.

- \`app.ts\`: the app (routes, migrations, a cached query, a job); \`fleet.config.ts\` points at it.
- \`test/app.test.ts\`: its tests (\`@fleet-stack/fleet/testing\`).
- \`npx fleet status\`, \`npx fleet restart web\`, \`npx fleet --help\`: the running stack.
`
}
