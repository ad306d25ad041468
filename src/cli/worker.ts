import type { Command } from 'commander'

/** Placeholder until the worker command lands (being written in parallel in this session). */
export function registerWorker(_program: Command): void {}
