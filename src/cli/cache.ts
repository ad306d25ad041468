import type { Command } from 'commander'

/** Placeholder until the cache command lands (being written in parallel in this session). */
export function registerCache(_program: Command): void {}
