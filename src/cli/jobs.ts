import type { Command } from 'commander'

/** Placeholder until the jobs command lands (being written in parallel in this session). */
export function registerJobs(_program: Command): void {}
