import type { Deps } from '../deps.js';

/** What a job run did: how many rows it changed, plus job-specific counts for the log. */
export interface JobResult {
  processed: number;
  detail?: Record<string, number>;
}

/** A scheduled job: a plain, idempotent function of the dependencies and the time it runs at. */
export interface Job {
  name: string;
  /** node-cron expression (with seconds). */
  schedule: string;
  run(deps: Deps, now: Date): Promise<JobResult>;
}
