/**
 * `fleet dev`'s eyes: watches the app's folder for saved source files and reports them in batches (one save
 * of several files, or an editor's write-then-rename, is one batch). Each folder is watched on its own,
 * skipping node_modules, the stack's data folder and build output, so PostgreSQL's busy data files never
 * wake it and no inotify limit is reached on a big node_modules.
 */
import fs from 'node:fs'
import path from 'node:path'

/** Folders never watched, at any depth. */
const SKIP = new Set(['node_modules', 'data', 'dist', 'coverage', '.git', '.fleet'])
/** Files whose change reloads the app. */
const SOURCE = /\.(?:[cm]?[jt]s|tsx|jsx|json|sql)$/

export interface Watcher {
  close(): void
}

/**
 * Calls `onChange` with the changed files (relative to `root`) once no change came for `quietMs`.
 * Folders created later are watched too.
 */
export function watchSources(root: string, onChange: (files: string[]) => void, quietMs = 100): Watcher {
  const watchers = new Map<string, fs.FSWatcher>()
  const changed = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const flush = () => {
    timer = undefined
    const files = [...changed]
    changed.clear()
    if (files.length > 0 && !closed) onChange(files)
  }
  const watchDir = (dir: string) => {
    if (closed || watchers.has(dir)) return
    let watcher: fs.FSWatcher
    try {
      watcher = fs.watch(dir, (_event, name) => {
        if (!name) return
        const file = path.join(dir, name.toString())
        if (SKIP.has(name.toString())) return
        // A new folder (or one renamed into place) is watched from now on.
        fs.stat(file, (err, st) => {
          if (!err && st.isDirectory()) walk(file)
        })
        if (!SOURCE.test(file)) return
        changed.add(path.relative(root, file))
        if (timer) clearTimeout(timer)
        timer = setTimeout(flush, quietMs)
      })
    } catch {
      return // gone already, or not readable: nothing to watch
    }
    watcher.on('error', () => {
      watcher.close()
      watchers.delete(dir)
    })
    watchers.set(dir, watcher)
  }
  const walk = (dir: string) => {
    watchDir(dir)
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries)
      if (e.isDirectory() && !SKIP.has(e.name) && !e.name.startsWith('.')) walk(path.join(dir, e.name))
  }
  walk(root)
  return {
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    },
  }
}
