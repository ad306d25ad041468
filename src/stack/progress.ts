/**
 * Progress of a long step (seeding) in the terminal: a bar per phase on a TTY (cli-progress), and on a
 * plain output one line per phase and every tenth of the way, so a log file stays short.
 */
import cliProgress from 'cli-progress'

export class Progress {
  readonly #out: NodeJS.WriteStream
  readonly #label: string
  #bar: cliProgress.SingleBar | undefined
  #phase: string | undefined
  #lastTenth = -1

  constructor(out: NodeJS.WriteStream, label: string) {
    this.#out = out
    this.#label = label
  }

  /** Reports `done` of `total` in `phase`; a new phase starts a new bar (or line). */
  update(done: number, total: number, phase: string): void {
    if (phase !== this.#phase) {
      this.#finishBar()
      this.#phase = phase
      this.#lastTenth = -1
      if (this.#out.isTTY) {
        this.#bar = new cliProgress.SingleBar(
          {
            stream: this.#out,
            format: `  ${this.#label} ${phase} [{bar}] {value}/{total} ({percentage}%)`,
            hideCursor: false,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        )
        this.#bar.start(total, done)
        return
      }
    }
    if (this.#bar) {
      this.#bar.setTotal(total)
      this.#bar.update(done)
      return
    }
    const tenth = total > 0 ? Math.floor((done / total) * 10) : 10
    if (tenth !== this.#lastTenth) {
      this.#lastTenth = tenth
      this.#out.write(
        `  ${this.#label} ${phase}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}\n`,
      )
    }
  }

  /** Ends the current bar. */
  done(): void {
    this.#finishBar()
  }

  #finishBar(): void {
    this.#bar?.stop()
    this.#bar = undefined
  }
}
