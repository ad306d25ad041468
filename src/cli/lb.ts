import type { Command } from 'commander'

/** Placeholder until the lb command lands (being written in parallel in this session). */
export function registerLb(_program: Command): void {}
