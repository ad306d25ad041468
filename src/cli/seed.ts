import type { Command } from 'commander'

/** Placeholder until the seed command lands (being written in parallel in this session). */
export function registerSeed(_program: Command): void {}
