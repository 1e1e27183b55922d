import { sql } from 'kysely';
import { PREPARED, type Database } from '../db/database.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import { minuteOf, type RequestCounter } from './request-counter.js';

const MINUTE = 60_000;
/**
 * The active-grants signal counts up to this many and then reads this many: policies compare it with
 * small limits, and an uncapped count would cost every request time in proportion to a busy workload's
 * live grants (a fleet of agents under one workload can hold hundreds of thousands).
 */
export const ACTIVE_GRANTS_CAP = 1_000;
const dayOf = (at: Date) => at.toISOString().slice(0, 10);

/** The part of a request's params that names its target: the task's `target` params, else all of them. */
const targetOf = (params: Record<string, unknown>, target: readonly string[] | undefined) =>
  target ? Object.fromEntries(target.map((p) => [p, params[p] ?? null])) : params;

/**
 * The novelty keys of a request: '' for the task, '*' for its target (the task's `target` params, or
 * the whole parameter set), one per param.
 */
export function usageKeys(params: Record<string, unknown>, target?: readonly string[]): Array<{ param: string; value_sha256: string }> {
  return [
    { param: '', value_sha256: '' },
    { param: '*', value_sha256: sha256Hex(canonicalJson(targetOf(params, target))) },
    ...Object.entries(params).map(([param, v]) => ({ param, value_sha256: sha256Hex(canonicalJson(v)) })),
  ];
}

export interface WorkloadHistory {
  requestsLastMinute: number;
  requestsLastHour: number;
  /** Null when not asked for (no policy reads it). */
  activeGrants: number | null;
  taskIsNew: boolean;
  targetIsNew: boolean;
  newParams: string[];
}

/**
 * What the broker's own history says about this request, in one round trip: request rate over
 * sliding windows, active grants, and what this workload has used before (within the baseline).
 * The one-minute rate is the sliding-window estimate over two fixed buckets: the current minute
 * plus the previous one weighted by how much of it still lies inside the window.
 *
 * Active grants are counted only with `countActiveGrants`: the count walks up to ACTIVE_GRANTS_CAP
 * index entries and their heap rows (fresh rows are not all-visible), which a busy workload pays on
 * every request; measured at 32 clients it was 40% of Postgres' CPU per mint, for a fact that policies
 * which never read it do not need.
 */
export async function readHistory(
  db: Database,
  q: {
    workloadId: string;
    task: string;
    params: Record<string, unknown>;
    /** The task's `target` params (absent: all params are the target). */
    target?: readonly string[] | undefined;
    now: Date;
    baselineDays: number;
    counter: RequestCounter;
    countActiveGrants: boolean;
  },
): Promise<WorkloadHistory> {
  const cur = minuteOf(q.now);
  const prev = new Date(cur.getTime() - MINUTE);
  const hourAgo = new Date(cur.getTime() - 59 * MINUTE);
  const since = dayOf(new Date(q.now.getTime() - q.baselineDays * 86_400_000));
  const keys = usageKeys(q.params, q.target);
  const { rows } = await sql<{ cur: string; prev: string; hour: string; active: string | null; seen: string[] | null }>`${sql.raw(PREPARED)}
    select
      coalesce((select sum(n) from request_buckets where workload_id = ${q.workloadId} and minute = ${cur}), 0)
        + ${q.counter.unflushed(q.workloadId, cur)}::int as cur,
      coalesce((select sum(n) from request_buckets where workload_id = ${q.workloadId} and minute = ${prev}), 0)
        + ${q.counter.unflushed(q.workloadId, prev)}::int as prev,
      coalesce((select sum(n) from request_buckets where workload_id = ${q.workloadId} and minute >= ${hourAgo}), 0)
        + ${q.counter.unflushedSince(q.workloadId, hourAgo)}::int as hour,
      ${q.countActiveGrants ? sql`(select count(*) from (select 1 from grants where workload_id = ${q.workloadId} and status = 'active' and expires_at > ${q.now}
        limit ${ACTIVE_GRANTS_CAP}) a)` : sql`null::bigint`} as active,
      (select array_agg(distinct param) from usage_baseline
        join unnest(${keys.map((k) => k.param)}::text[], ${keys.map((k) => k.value_sha256)}::text[]) as k(p, h)
          on param = k.p and value_sha256 = k.h
        where workload_id = ${q.workloadId} and task = ${q.task} and day >= ${since}::date) as seen`.execute(db);
  const r = rows[0]!;
  const seen = new Set(r.seen ?? []);
  const fractionLeft = 1 - (q.now.getTime() - cur.getTime()) / MINUTE;
  return {
    requestsLastMinute: Number(r.cur) + Math.floor(Number(r.prev) * fractionLeft),
    requestsLastHour: Number(r.hour),
    activeGrants: r.active === null ? null : Number(r.active),
    taskIsNew: !seen.has(''),
    targetIsNew: !seen.has('*'),
    newParams: Object.keys(q.params).filter((p) => !seen.has(p)),
  };
}

/** The usage_baseline rows that remember the workload used this task with these params today. */
export function usageRows(workloadId: string, task: string, params: Record<string, unknown>, now: Date, target?: readonly string[]) {
  return usageKeys(params, target).map((k) => ({ workload_id: workloadId, task, ...k, day: dayOf(now) }));
}
