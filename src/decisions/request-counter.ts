import { sql } from 'kysely';
import type { Database } from '../db/database.js';

/** How often a replica writes its counts to Postgres: the lag with which other replicas see them. */
export const REQUEST_COUNT_FLUSH_MS = 1_000;
const MINUTE = 60_000;
/** Own counts are kept this long: the hour window reads the current minute and the 59 before it. */
const KEPT_MINUTES = 61;

/** The minute bucket a time falls in. */
export const minuteOf = (at: Date) => new Date(Math.floor(at.getTime() / MINUTE) * MINUTE);

/** Before a replica has its shard: it has written nothing, so a read leaves out no shard. */
const NO_SHARD = -1;

/**
 * Requests per workload per minute. Each replica counts its own requests in memory and writes its
 * totals to a shard of its own in `request_buckets` once a second; a read takes this replica's counts
 * from memory and only the other replicas' from Postgres (`shard <> own`, for the minutes it still
 * keeps: see keptFrom). So a replica's own counts
 * are exact at once and other replicas' appear within a second, and the request path touches no
 * shared row (counting inside each request's transaction made concurrent requests of one workload
 * queue on the bucket row's lock through every commit: most of the mint time at 32 clients).
 *
 * The shards are what makes the read exact. Before them every replica added its pending counts to
 * one shared row, and a read added the counts still in memory: for the flush's round trip the counts
 * were in neither, and a rate policy read low (fail open). Counting them while in flight read them
 * twice as often, because a read's statement may run before or after the flush commits. A shard is
 * written with totals, not increments, so a retried write cannot count twice either.
 */
export class RequestCounter {
  /** workload → minute (epoch ms) → this replica's count, for the last KEPT_MINUTES minutes. */
  #counts = new Map<string, Map<number, number>>();
  /** The counts changed since they were last written. */
  #dirty = new Map<string, Set<number>>();
  #shard: number | undefined;
  #taking: Promise<number> | undefined;
  /** The minute of the latest request counted: the clock's, even if it stepped back. */
  #newest = 0;
  #forgotBefore = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(private readonly db: Database) {}

  /** This replica's shard, which its reads leave out of Postgres' sum. */
  get shard(): number {
    return this.#shard ?? NO_SHARD;
  }

  /** Counts one request of `workloadId` at `now`. */
  increment(workloadId: string, now: Date): void {
    const minute = minuteOf(now).getTime();
    let counts = this.#counts.get(workloadId);
    if (!counts) this.#counts.set(workloadId, (counts = new Map()));
    counts.set(minute, (counts.get(minute) ?? 0) + 1);
    let dirty = this.#dirty.get(workloadId);
    if (!dirty) this.#dirty.set(workloadId, (dirty = new Set()));
    dirty.add(minute);
    this.#newest = minute;
  }

  /**
   * From this minute on, this replica's counts are all in memory; before it, they may have been
   * forgotten once written, and a read takes them from this replica's shard in Postgres instead.
   */
  get keptFrom(): Date {
    return new Date(this.#forgotBefore);
  }

  /** This replica's count for a workload and minute, if the minute is still kept (see keptFrom). */
  own(workloadId: string, minute: Date): number {
    return minute.getTime() < this.#forgotBefore ? 0 : (this.#counts.get(workloadId)?.get(minute.getTime()) ?? 0);
  }

  /** This replica's counts of a workload since `from` (inclusive), in the minutes still kept. */
  ownSince(workloadId: string, from: Date): number {
    const counts = this.#counts.get(workloadId);
    if (!counts) return 0;
    const since = Math.max(from.getTime(), this.#forgotBefore);
    let n = 0;
    for (const [minute, count] of counts) if (minute >= since) n += count;
    return n;
  }

  /** Writes the changed counts to this replica's shard in one statement; on failure they stay changed. */
  flush(): Promise<void> {
    this.#flushing ??= this.write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  private async write(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const shard = await this.takeShard();
    const dirty = this.#dirty;
    this.#dirty = new Map();
    const workloads: string[] = [];
    const minutes: string[] = [];
    const counts: number[] = [];
    for (const [workloadId, changed] of dirty) {
      const own = this.#counts.get(workloadId)!;
      for (const minute of changed) {
        workloads.push(workloadId);
        minutes.push(new Date(minute).toISOString());
        counts.push(own.get(minute)!);
      }
    }
    try {
      // Totals, and never lower than what is there: a write that is retried, or overtaken, counts once.
      await sql`
        insert into request_buckets (workload_id, minute, shard, n)
        select w, m::timestamptz, ${shard}, n from unnest(${workloads}::text[], ${minutes}::text[], ${counts}::int[]) as t(w, m, n)
        on conflict (workload_id, minute, shard) do update set n = greatest(request_buckets.n, excluded.n)`.execute(this.db);
    } catch (err) {
      for (const [workloadId, changed] of dirty) {
        const again = this.#dirty.get(workloadId);
        if (again) for (const minute of changed) again.add(minute);
        else this.#dirty.set(workloadId, changed);
      }
      throw err;
    }
    this.forgetOld();
  }

  /**
   * Drops written counts older than the hour window of the latest request, once a minute. Only ever
   * forward: the minutes before keptFrom are read from Postgres, where each was written in full
   * before it was dropped, so a clock that jumps ahead and back loses no count.
   */
  private forgetOld(): void {
    const oldest = this.#newest - (KEPT_MINUTES - 1) * MINUTE;
    if (oldest <= this.#forgotBefore) return;
    this.#forgotBefore = oldest;
    for (const [workloadId, counts] of this.#counts) {
      const dirty = this.#dirty.get(workloadId);
      for (const minute of counts.keys()) if (minute < oldest && !dirty?.has(minute)) counts.delete(minute);
      if (counts.size === 0) this.#counts.delete(workloadId);
    }
  }

  /** This replica's shard, taken from the sequence once (a failed attempt is tried again next time). */
  private takeShard(): Promise<number> {
    if (this.#shard !== undefined) return Promise.resolve(this.#shard);
    this.#taking ??= sql<{ shard: number }>`select nextval('request_bucket_shards')::int as shard`
      .execute(this.db)
      .then(({ rows }) => (this.#shard = rows[0]!.shard))
      .finally(() => {
        this.#taking = undefined;
      });
    return this.#taking;
  }

  /**
   * Takes this replica's shard, then writes every second. Reads made before the shard is known leave
   * out no shard, which counts this replica twice if its first write commits before they run: start
   * before serving.
   */
  async start(intervalMs = REQUEST_COUNT_FLUSH_MS): Promise<void> {
    await this.takeShard();
    this.#timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  /** Writes what is left: a flush already in flight may have started before the last requests. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.flush().catch(() => {});
      if (this.#dirty.size === 0) return;
    }
  }
}
