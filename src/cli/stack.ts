import type { Command } from 'commander'

/** Placeholder until the stack command lands (being written in parallel in this session). */
export function registerStack(_program: Command): void {}
