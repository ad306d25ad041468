/** Your own service on Fleet: a route read through the query cache, a cached class, an async job. */
import {
  type AssembleContext,
  accepted,
  defineApp,
  defineJob,
  defineQuery,
  jobClient,
  jobOwner,
  Type,
} from '@fleet-stack/fleet'

const greetingsIn = defineQuery<{ text: string }, [string]>({
  name: 'hello.greetings-in',
  sql: 'SELECT text FROM greetings WHERE lang = $1 ORDER BY id',
})

/** A language's card, assembled from two queries, cached whole and read back as a Language. */
export class Language {
  greetings: string[] = []
  total = 0
  share(): string {
    return `${this.greetings.length} of ${this.total} greetings`
  }
  static cache = {
    name: 'hello.Language',
    key: (lang: string) => lang,
    tags: () => ['greetings'], // a write to the table invalidates every card
    async assemble({ db }: AssembleContext, lang: string) {
      const [mine, all] = await Promise.all([
        db.query<{ text: string }>(greetingsIn.sql, [lang]),
        db.query<{ n: number }>('SELECT count(*)::int AS n FROM greetings'),
      ])
      return Object.assign(new Language(), { greetings: mine.rows.map((r) => r.text), total: all.rows[0].n })
    },
  }
}

/** Shouts a greeting (the heavy part), then stores it once, even when the job runs twice. */
export const shout = defineJob({
  name: 'hello.shout',
  payload: Type.Object({ text: Type.String({ minLength: 1, maxLength: 200 }) }),
  process: async (ctx) => ctx.payload.text.toUpperCase(),
  commit: async (tx, loud) => {
    await tx.query(`INSERT INTO greetings (lang, text) VALUES ('loud', $1)`, [loud])
    return { text: loud }
  },
})

const schema = `CREATE TABLE greetings (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, lang text NOT NULL,
  text text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
  INSERT INTO greetings (lang, text) VALUES ('en', 'Hello'), ('en', 'Hi'), ('fr', 'Bonjour');`

export default defineApp({
  name: 'hello',
  migrations: [{ id: '001_hello_greetings', up: schema }],
  queries: [greetingsIn],
  classes: [Language],
  jobs: [shout],
  routes: [
    async (app, deps) => {
      app.get<{ Params: { lang: string } }>('/hello/:lang', async (req, reply) => {
        const { rows, status } = await deps.cache.run(greetingsIn, [req.params.lang])
        return reply.header('x-cache', status).send({ greetings: rows.map((r) => r.text) })
      })
      app.get<{ Params: { lang: string } }>('/hello/:lang/card', async (req, reply) => {
        const { value: card, status } = await deps.cache.get(Language, req.params.lang)
        return reply.header('x-cache', status).send({ first: card.greetings[0], share: card.share() })
      })
      app.post<{ Body: unknown }>('/hello/shout', async (req, reply) => {
        const owner = await jobOwner(req, { anonymous: true }) // this browser follows /api/jobs/:id
        return accepted(reply, await jobClient(deps).submit(shout, req.body, owner))
      })
    },
  ],
})
