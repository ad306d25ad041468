/**
 * The stack's reaper: a small process that `fleet up` starts first, in a process group of its own, holding
 * the read end of a pipe from the supervisor. When that pipe closes without the word `clean` (the
 * supervisor was SIGKILLed, crashed, or lost to the OOM killer), it stops what the supervisor left, the
 * way the next `fleet up` on the folder would: the recorded children (SIGTERM, then SIGKILL) and the stores
 * started on this data folder. So no process of the stack outlives its supervisor, however it dies.
 * Signals do not stop it (a Ctrl-C reaches the whole terminal's group): only the pipe decides.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../config/index.js'
import { stopLeftovers } from './leftovers.js'
import { cliPath } from './roles.js'
import { stopLeftoverStores } from './services.js'

const CLEAN = 'clean\n'

/** The supervisor's side: the running reaper, told `clean` when the stack stopped in order. */
export interface Reaper {
  /** The ordered stop is done: the reaper exits without stopping anything. */
  release(): void
}

/**
 * Starts the reaper of the stack on `dataDir`. `env` carries the settings that say which stores this stack
 * starts itself (DATABASE_URL / REDIS_URL / CACHE_REDIS_URL unset), as the user gave them.
 */
export function startReaper(dataDir: string, env: NodeJS.ProcessEnv): Reaper {
  const self = fileURLToPath(import.meta.url)
  // From the sources (tsx), the reaper runs its .ts through tsx too.
  const args = self.endsWith('.ts') ? ['--import', 'tsx', self, dataDir] : [self, dataDir]
  const child: ChildProcess = spawn(process.execPath, args, {
    env,
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true, // its own group: the terminal's Ctrl-C and a kill of our group do not reach it
  })
  child.stdin?.on('error', () => {}) // the reaper gone first: nothing to tell it
  child.unref()
  return {
    release() {
      child.stdin?.end(CLEAN)
    },
  }
}

/** The reaper's own side: waits for the pipe to close, then stops the leftovers unless told `clean`. */
async function main(dataDir: string): Promise<void> {
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => {})
  const log = createWriteStream(path.join(dataDir, 'logs', 'reaper.log'), { flags: 'a' })
  log.on('error', () => {})
  const say = (line: string) => log.write(`${new Date().toISOString()} ${line}\n`)
  let text = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk: string) => {
    text += chunk
  })
  await new Promise<void>((resolve) => process.stdin.once('close', () => resolve()))
  if (text.includes(CLEAN)) return
  say('the supervisor is gone without stopping the stack: stopping what it left')
  const stopped = await stopLeftovers(path.join(dataDir, 'children.json'), cliPath).catch((err: Error) => {
    say(`stopping the children failed: ${err.message}`)
    return []
  })
  if (stopped.length > 0) say(`stopped ${stopped.join(', ')}`)
  const config = loadConfig()
  await stopLeftoverStores(config, dataDir, (name, line) => say(`${name}: ${line}`)).catch((err: Error) =>
    say(`stopping the stores failed: ${err.message}`),
  )
  say('done')
  await new Promise<void>((resolve) => log.end(() => resolve()))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dataDir = process.argv[2]
  if (!dataDir) {
    process.stderr.write('usage: node reaper.js <data dir>\n')
    process.exit(2)
  }
  await main(dataDir)
  process.exit(0)
}
