import type { Command } from 'commander'

/** `fleet init [folder]`: a new project of your own on Fleet (src/init/project.ts). */
export function registerInit(program: Command): void {
  program
    .command('init')
    .argument('[folder]', 'where to write the project (created when missing; must be empty)', '.')
    .description(
      'Start a project of your own on Fleet: write package.json ("type": "module"), an app, its test and a README into an empty folder, then run npm install there.',
    )
    .option('--name <name>', 'project and app name (default: from the folder name)')
    .option(
      '--fleet <spec>',
      "the dependency on Fleet in package.json (default: this Fleet's version, or file:<checkout> when run from a clone)",
    )
    .option('--no-install', 'write the files only; run npm install yourself')
    .action(async (folder: string, opts: { name?: string; fleet?: string; install: boolean }) => {
      const { initProject } = await import('../init/project.js')
      await initProject(folder, { name: opts.name, fleet: opts.fleet, install: opts.install })
    })
}
