import cron, { type ScheduledTask } from 'node-cron';
import type { Deps } from '../deps.js';
import { metrics } from '../lib/metrics.js';
import type { Job, JobResult } from './job.js';
import { JOBS } from './jobs.js';

const jobRuns = metrics.counter('tessera_job_runs_total', 'Scheduled job runs, by job and outcome (ok, retried, failed).');
const jobDuration = metrics.histogram('tessera_job_duration_seconds', 'How long scheduled job runs took, by job.', [0.01, 0.05, 0.1, 0.5, 1, 5, 30]);

export interface RetryPolicy {
  /** Attempts per run, including the first. */
  attempts: number;
  /** Delay before the second attempt; doubles for each one after. */
  baseDelayMs: number;
}

/** A failing run retries soon (Postgres blips), then gives up until the next tick, counted as failed. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 500 };

/**
 * Runs one job with retries and backoff; never throws. Every attempt reads the clock afresh. Failures
 * are logged and counted (`tessera_job_runs_total{outcome="failed"}`): a job never fails silently.
 */
export async function runJob(job: Job, deps: Deps, retry: RetryPolicy = DEFAULT_RETRY): Promise<JobResult | undefined> {
  const started = process.hrtime.bigint();
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await job.run(deps, deps.clock.now());
      jobRuns.inc({ job: job.name, outcome: attempt === 1 ? 'ok' : 'retried' });
      jobDuration.observe(Number(process.hrtime.bigint() - started) / 1e9, { job: job.name });
      if (result.processed > 0) deps.log.info({ job: job.name, ...result }, 'job run');
      return result;
    } catch (err) {
      const last = attempt >= retry.attempts;
      deps.log[last ? 'error' : 'warn']({ job: job.name, attempt, err: (err as Error).message }, last ? 'job failed' : 'job attempt failed; retrying');
      if (last) {
        jobRuns.inc({ job: job.name, outcome: 'failed' });
        return undefined;
      }
      await new Promise((r) => setTimeout(r, retry.baseDelayMs * 2 ** (attempt - 1)));
    }
  }
}

export interface Scheduler {
  /** Stops scheduling and waits for runs in progress, so the database can close under none. */
  stop(): Promise<void>;
}

/** Schedules every job with node-cron; a job still running when its next tick comes skips that tick. */
export function startScheduler(deps: Deps, jobs: readonly Job[] = JOBS): Scheduler {
  const running = new Set<Promise<unknown>>();
  const tasks: ScheduledTask[] = jobs.map((job) =>
    cron.schedule(
      job.schedule,
      () => {
        const run = runJob(job, deps);
        running.add(run);
        return run.finally(() => running.delete(run));
      },
      { name: job.name, noOverlap: true, suppressMissedWarning: true },
    ),
  );
  return {
    async stop() {
      await Promise.all(tasks.map((t) => t.destroy()));
      await Promise.all(running);
    },
  };
}
