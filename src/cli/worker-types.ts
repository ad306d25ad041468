/** The application's job types that `fleet worker` runs (the shop's heavy tasks). */
import type { AnyJobType } from '../jobs/define.js'

export const shopJobTypes: readonly AnyJobType[] = []
