/** The application's job types that `fleet worker` runs (the shop's heavy tasks). */
import type { AnyJobType } from '../jobs/define.js'
import { thumbnailsJob } from '../shop/images.js'
import { recommendationsJob } from '../shop/recommendations.js'

export const shopJobTypes: readonly AnyJobType[] = [thumbnailsJob, recommendationsJob]
