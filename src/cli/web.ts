import type { Command } from 'commander'

/** Placeholder until the web command lands (being written in this session). */
export function registerWeb(_program: Command): void {}
