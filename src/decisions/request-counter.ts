import { sql } from 'kysely';
import type { Database } from '../db/database.js';

/** How often a replica adds its counts to Postgres: the lag with which other replicas see them. */
export const REQUEST_COUNT_FLUSH_MS = 1_000;
const MINUTE = 60_000;

/** The minute bucket a time falls in. */
export const minuteOf = (at: Date) => new Date(Math.floor(at.getTime() / MINUTE) * MINUTE);

/** A workload's count for one minute, as the counter keys it. */
const countKey = (workloadId: string, minute: Date) => `${workloadId}\u0000${minute.toISOString()}`;

/**
 * Requests per workload per minute, counted in memory and added to `request_buckets` once a second.
 * Counting inside each request's transaction made concurrent requests of one workload queue on the
 * bucket row's lock through every commit (measured: most of the mint time at 32 clients). Now the
 * request path touches no shared row; a replica's own counts are exact at once (unflushed ones are
 * added on read) and other replicas' appear within a second. Counts that fail to flush are kept and
 * retried, never dropped.
 */
export class RequestCounter {
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(private readonly db: Database) {}

  /** Counts one request of `workloadId` at `now`. */
  increment(workloadId: string, now: Date): void {
    const key = countKey(workloadId, minuteOf(now));
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
  }

  /** This replica's not yet flushed count for a workload and minute. */
  unflushed(workloadId: string, minute: Date): number {
    return this.#pending.get(countKey(workloadId, minute)) ?? 0;
  }

  /** Unflushed counts of a workload since `from` (inclusive). */
  unflushedSince(workloadId: string, from: Date): number {
    let n = 0;
    for (const [key, count] of this.#pending) {
      const [w, m] = key.split('\u0000');
      if (w === workloadId && new Date(m!) >= from) n += count;
    }
    return n;
  }

  /** Adds the pending counts to Postgres in one statement; on failure they stay pending. */
  flush(): Promise<void> {
    this.#flushing ??= this.write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  private async write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const workloads: string[] = [];
    const minutes: string[] = [];
    const counts: number[] = [];
    for (const [key, n] of batch) {
      const [w, m] = key.split('\u0000');
      workloads.push(w!);
      minutes.push(m!);
      counts.push(n);
    }
    try {
      await sql`
        insert into request_buckets (workload_id, minute, shard, n)
        select w, m::timestamptz, 0, n from unnest(${workloads}::text[], ${minutes}::text[], ${counts}::int[]) as t(w, m, n)
        on conflict (workload_id, minute, shard) do update set n = request_buckets.n + excluded.n`.execute(this.db);
    } catch (err) {
      for (const [key, n] of batch) this.#pending.set(key, (this.#pending.get(key) ?? 0) + n);
      throw err;
    }
  }

  start(intervalMs = REQUEST_COUNT_FLUSH_MS): void {
    this.#timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => {});
  }
}
