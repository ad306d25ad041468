/**
 * Fleet's layers, checked by `npm run lint` (dependency-cruiser). Read from the bottom up:
 *
 *   config, errors.ts, log.ts, net/, redis/,     settings, errors, logs, sockets, module loading: know nothing
 *   loader/                                      above them
 *   db/, registry/, cache/                       the stores and what Fleet keeps in them
 *   jobs/                                        job types, queues, the worker's runner
 *   process/                                     what a web server or a worker opens (ProcessDeps) and closes
 *   web/                                         Fastify: routes, sessions, the jobs HTTP API
 *   app/                                         an app: its declaration, its lists (manifest), running it
 *   lb/                                          the load balancer: a leaf beside the others (see below)
 *   dashboard/                                   the LB's admin extension, reading it through lb/view.ts
 *   stack/                                       `fleet up`: supervises processes, never runs the web or the LB
 *   cli/, cli.ts, init/, index.ts + subpaths     entry points: they compose everything above
 *
 * A rule's comment says why it exists; `npx depcruise src apps examples` explains a failure.
 */
const ENTRIES = '^src/(index|types|error-classes|runtime|testing)\\.ts$'

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A cycle makes two modules one: neither can change or load without the other. (A type named both ways loads nothing and is allowed.)',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      comment: 'Only the CLI (src/cli.ts, src/cli/) imports the CLI: commands compose the layers, never the other way.',
      from: { path: '^src/', pathNot: '^src/(cli\\.ts$|cli/)' },
      to: { path: '^src/(cli\\.ts$|cli/)' },
    },
    {
      name: 'entries-are-for-users',
      severity: 'error',
      comment: "The public entries re-export; Fleet's own code imports the module that defines a name.",
      from: { path: '^src/', pathNot: ENTRIES },
      to: { path: ENTRIES },
    },
    {
      name: 'lb-is-a-leaf',
      severity: 'error',
      comment:
        'The load balancer is the data plane: config, errors, logs, sockets and the registry only. What plugs into its admin port (the dashboard) is given to it as an AdminExtension (src/lb/view.ts).',
      from: { path: '^src/lb/' },
      to: { path: '^src/', pathNot: '^src/(lb/|config/|errors\\.ts$|log\\.ts$|net/|registry/|redis/)' },
    },
    {
      name: 'dashboard-reads-the-lb-through-its-view',
      severity: 'error',
      comment: 'The dashboard sees the LB as LbView (src/lb/view.ts), not its internals.',
      from: { path: '^src/dashboard/' },
      to: { path: '^src/lb/', pathNot: '^src/lb/view\\.ts$' },
    },
    {
      name: 'dashboard-does-not-load-the-stack',
      severity: 'error',
      comment:
        "The dashboard runs in the LB process: it names fleet up's status types, but the code that asks fleet up is given to it (DashboardOptions.readSupervisor).",
      from: { path: '^src/dashboard/' },
      to: { path: '^src/stack/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'stores-know-no-process',
      severity: 'error',
      comment: 'config, db, redis, registry, cache, net and loader serve every process and know none of them.',
      from: { path: '^src/(config|db|redis|registry|cache|net|loader)/' },
      to: { path: '^src/(jobs|process|web|app|lb|dashboard|stack|init)/' },
    },
    {
      name: 'jobs-below-the-web',
      severity: 'error',
      comment: "Jobs run in workers without Fastify: the jobs' HTTP API lives in src/web/jobs-api.ts.",
      from: { path: '^src/jobs/' },
      to: { path: '^src/(web|app|lb|dashboard|stack|init)/' },
    },
    {
      name: 'web-below-the-app',
      severity: 'error',
      comment: 'The web runtime and the process wiring serve any app; they import no app code and no supervisor.',
      from: { path: '^src/(web|process)/' },
      to: { path: '^src/(app|lb|dashboard|stack|init)/' },
    },
    {
      name: 'supervisor-without-the-runtime',
      severity: 'error',
      comment:
        "fleet up supervises processes: it needs the app's lists (src/app/manifest.ts), not Fastify, the worker or the LB.",
      from: { path: '^src/stack/' },
      to: { path: '^src/(app/runtime\\.ts$|web/|process/open\\.ts$|lb/|dashboard/)' },
    },
    {
      name: 'the-core-knows-no-app',
      severity: 'error',
      comment: 'The demo shop and the examples are apps like any other: src/ never imports them.',
      from: { path: '^src/' },
      to: { path: '^(apps|examples)/' },
    },
    {
      name: 'apps-use-the-public-api',
      severity: 'error',
      comment: "apps/ and examples/ import Fleet by its name ('@fleet-stack/fleet'...), never a path into src/.",
      from: { path: '^(apps|examples)/' },
      to: { path: '^src/', pathNot: ENTRIES },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
