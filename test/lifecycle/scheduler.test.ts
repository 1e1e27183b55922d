import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { runJob, startScheduler } from '../../src/scheduler/scheduler.js';
import { metrics } from '../../src/lib/metrics.js';
import { ManualClock } from '../../src/lib/clock.js';
import type { Deps } from '../../src/deps.js';
import type { Job } from '../../src/scheduler/job.js';

const deps = { clock: new ManualClock('2026-11-22T12:00:00Z'), log: pino({ level: 'silent' }) } as unknown as Deps;
const fast = { attempts: 3, baseDelayMs: 1 };

describe('runJob', () => {
  it('retries a failing run with backoff and counts it as retried', async () => {
    let calls = 0;
    const job: Job = { name: 'flaky', schedule: '* * * * * *', run: async () => (++calls < 3 ? Promise.reject(new Error('db blip')) : { processed: 1 }) };
    expect(await runJob(job, deps, fast)).toEqual({ processed: 1 });
    expect(calls).toBe(3);
    expect(metrics.render()).toContain('tessera_job_runs_total{job="flaky",outcome="retried"} 1');
  });

  it('gives up after the last attempt without throwing, and counts the failure', async () => {
    const job: Job = { name: 'broken', schedule: '* * * * * *', run: async () => Promise.reject(new Error('down')) };
    expect(await runJob(job, deps, fast)).toBeUndefined();
    expect(metrics.render()).toContain('tessera_job_runs_total{job="broken",outcome="failed"} 1');
  });
});

describe('startScheduler', () => {
  it('runs jobs on their node-cron schedule with the injected clock, and stops', async () => {
    const seen: Date[] = [];
    const scheduler = startScheduler(deps, [{ name: 'tick', schedule: '* * * * * *', run: async (_d, now) => (seen.push(now), { processed: 0 }) }]);
    await new Promise((r) => setTimeout(r, 2_200));
    await scheduler.stop();
    const n = seen.length;
    expect(n).toBeGreaterThanOrEqual(1);
    expect(seen[0]).toEqual(new Date('2026-11-22T12:00:00Z'));
    await new Promise((r) => setTimeout(r, 1_100));
    expect(seen.length).toBe(n);
  });
});
