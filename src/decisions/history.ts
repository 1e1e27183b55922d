import { CompiledQuery } from 'kysely';
import { PREPARED, sqlStateClass, type Database } from '../db/database.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import { minuteOf, type RequestCounter } from './request-counter.js';
import { TurnBatcher } from '../lib/turn-batcher.js';
import { latestSignalsColumn, latestSignalsFrom, storableSignalKeys, type SignalKey, type StoredSignal } from '../signals/signal.repository.js';

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

type UsageKey = { param: string; value_sha256: string };

/**
 * Keys already computed for a params object: a mint asks once for its history and once more for the
 * baseline rows it writes, with the same request's params (never changed once parsed).
 */
const keysOf = new WeakMap<Record<string, unknown>, { target: readonly string[] | undefined; keys: readonly UsageKey[] }>();

/**
 * The novelty keys of a request: '' for the task, '*' for its target (the task's `target` params, or
 * the whole parameter set), one per param.
 */
export function usageKeys(params: Record<string, unknown>, target?: readonly string[]): UsageKey[] {
  const known = keysOf.get(params);
  if (known && known.target === target) return known.keys.map((k) => ({ ...k }));
  const keys = [
    { param: '', value_sha256: '' },
    { param: '*', value_sha256: sha256Hex(canonicalJson(targetOf(params, target))) },
    ...Object.entries(params).map(([param, v]) => ({ param, value_sha256: sha256Hex(canonicalJson(v)) })),
  ];
  keysOf.set(params, { target, keys: keys.map((k) => ({ ...k })) });
  return keys;
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

/** One request's history question. */
export interface HistoryQuery {
  workloadId: string;
  task: string;
  params: Record<string, unknown>;
  /** The task's `target` params (absent: all params are the target). */
  target?: readonly string[] | undefined;
  now: Date;
  baselineDays: number;
  countActiveGrants: boolean;
  /**
   * Count this request as its question is asked, so the counts it reads are those of the requests
   * asked before it (on this replica exactly; other replicas' within a flush). Counting once the
   * decision came back let a burst of one workload past a rate limit: requests whose reads were in
   * flight together each read the counts without the others.
   */
  count?: boolean;
}

/** One request's question for its facts: its history, and the newest observation of each signal key. */
export interface FactsQuery extends HistoryQuery {
  signals: SignalKey[];
}

/** What Postgres knows about one request: its workload's history and the signals it asked for (those observed). */
export interface Facts {
  history: WorkloadHistory;
  signals: StoredSignal[];
}

/** A question as sent to Postgres: its windows, keys and this replica's own counts, fixed when asked. */
interface FactsRow {
  /** Its place in the batch: answers come back in this order. */
  i: number;
  workload_id: string;
  task: string;
  now: string;
  cur: string;
  prev: string;
  hour_ago: string;
  since: string;
  count_active: boolean;
  params: string[];
  hashes: string[];
  /** This replica's shard, left out of Postgres' sums from own_kept_from on: its own counts come from memory. */
  own_shard: number;
  own_kept_from: string;
  own_cur: number;
  own_prev: number;
  own_hour: number;
  signal_keys: SignalKey[];
}

function factsRow(q: FactsQuery, counter: RequestCounter): Omit<FactsRow, 'i'> {
  const cur = minuteOf(q.now);
  const prev = new Date(cur.getTime() - MINUTE);
  const hourAgo = new Date(cur.getTime() - 59 * MINUTE);
  const keys = usageKeys(q.params, q.target);
  return {
    workload_id: q.workloadId,
    task: q.task,
    now: q.now.toISOString(),
    cur: cur.toISOString(),
    prev: prev.toISOString(),
    hour_ago: hourAgo.toISOString(),
    since: dayOf(new Date(q.now.getTime() - q.baselineDays * 86_400_000)),
    count_active: q.countActiveGrants,
    params: keys.map((k) => k.param),
    hashes: keys.map((k) => k.value_sha256),
    own_shard: counter.shard,
    own_kept_from: counter.keptFrom.toISOString(),
    own_cur: counter.own(q.workloadId, cur),
    own_prev: counter.own(q.workloadId, prev),
    own_hour: counter.ownSince(q.workloadId, hourAgo),
    signal_keys: storableSignalKeys(q.signals),
  };
}

/**
 * What the broker knows about each request, for any number of requests in one statement: the
 * newest observation of each signal it asks for (see latestSignalsColumn), and what its own history says:
 * request rate over sliding windows, active grants, and what the workload has used before (within the
 * baseline). The one-minute rate is the sliding-window estimate over two fixed buckets: the current
 * minute plus the previous one weighted by how much of it still lies inside the window.
 *
 * Active grants are counted only where `count_active` is set: the count walks up to ACTIVE_GRANTS_CAP
 * index entries and their heap rows (fresh rows are not all-visible), which a busy workload pays on
 * every request; measured at 32 clients it was 40% of Postgres' CPU per mint, for a fact that policies
 * which never read it do not need.
 */
const FACTS_SQL = `${PREPARED}
  select
    coalesce((select sum(n) from request_buckets b where b.workload_id = q.workload_id and b.minute = q.cur and (b.shard <> q.own_shard or b.minute < q.own_kept_from)), 0) + q.own_cur as cur,
    coalesce((select sum(n) from request_buckets b where b.workload_id = q.workload_id and b.minute = q.prev and (b.shard <> q.own_shard or b.minute < q.own_kept_from)), 0) + q.own_prev as prev,
    coalesce((select sum(n) from request_buckets b where b.workload_id = q.workload_id and b.minute >= q.hour_ago and (b.shard <> q.own_shard or b.minute < q.own_kept_from)), 0) + q.own_hour as hour,
    case when q.count_active then (select count(*) from (select 1 from grants g where g.workload_id = q.workload_id and g.status = 'active'
      and g.expires_at > q.now limit ${ACTIVE_GRANTS_CAP}) a) end as active,
    (select array_agg(distinct u.param) from usage_baseline u
      join unnest(q.params, q.hashes) as k(p, h) on u.param = k.p and u.value_sha256 = k.h
      where u.workload_id = q.workload_id and u.task = q.task and u.day >= q.since) as seen,
    ${latestSignalsColumn('q.signal_keys')} as signals
  from jsonb_to_recordset($1::jsonb) as q(i int, workload_id text, task text, now timestamptz, cur timestamptz,
    prev timestamptz, hour_ago timestamptz, since date, count_active boolean, params text[], hashes text[],
    own_shard int, own_kept_from timestamptz, own_cur int, own_prev int, own_hour int, signal_keys jsonb)
  order by q.i`;

async function readFacts(db: Database, questions: Array<{ q: FactsQuery; row: Omit<FactsRow, 'i'> }>): Promise<Facts[]> {
  const { rows } = await db.executeQuery<{ cur: string; prev: string; hour: string; active: string | null; seen: string[] | null; signals: Parameters<typeof latestSignalsFrom>[0] }>(
    CompiledQuery.raw(FACTS_SQL, [JSON.stringify(questions.map((x, i) => ({ ...x.row, i })))]),
  );
  if (rows.length !== questions.length) throw new Error(`facts: ${rows.length} answers to ${questions.length} questions`);
  return rows.map((r, i) => {
    const { q } = questions[i]!;
    const seen = new Set(r.seen ?? []);
    const fractionLeft = 1 - (q.now.getTime() - minuteOf(q.now).getTime()) / MINUTE;
    const history = {
      requestsLastMinute: Number(r.cur) + Math.floor(Number(r.prev) * fractionLeft),
      requestsLastHour: Number(r.hour),
      activeGrants: r.active === null ? null : Number(r.active),
      taskIsNew: !seen.has(''),
      targetIsNew: !seen.has('*'),
      newParams: Object.keys(q.params).filter((p) => !seen.has(p)),
    };
    return { history, signals: latestSignalsFrom(r.signals) };
  });
}

/** Questions per statement: past this a burst is split, so one answer never waits on a huge batch. */
const MAX_BATCH = 64;

/**
 * Reads the facts of decisions (history and signals), sharing one statement among the requests that
 * ask in the same turn of the event loop (TurnBatcher). Each request used to cost a round trip of its
 * own: a socket write and read in the broker and a statement in Postgres, which on this hardware cost
 * more than the lookups themselves; then history and signals shared one statement each, two per turn,
 * and now one (each statement also wakes a Postgres backend that takes a core from the request thread).
 * The answer is the same as a query of its own (each question carries its own time, keys and this
 * replica's own counts, fixed when it was asked); a failed statement fails every request in it,
 * except a data exception (class 22), which may be one request's key: then each is asked alone.
 */
export class FactsReader {
  readonly #batcher: TurnBatcher<{ q: FactsQuery; row: Omit<FactsRow, 'i'> }, Facts>;

  constructor(
    db: Database,
    private readonly counter: RequestCounter,
  ) {
    this.#batcher = new TurnBatcher((questions) => readFacts(db, questions), MAX_BATCH, (err) => sqlStateClass(err) === '22');
  }

  read(q: FactsQuery): Promise<Facts> {
    const row = factsRow(q, this.counter);
    if (q.count) this.counter.increment(q.workloadId, q.now);
    return this.#batcher.ask({ q, row });
  }
}

/** The usage_baseline rows that remember the workload used this task with these params today. */
export function usageRows(workloadId: string, task: string, params: Record<string, unknown>, now: Date, target?: readonly string[]) {
  return usageKeys(params, target).map((k) => ({ workload_id: workloadId, task, ...k, day: dayOf(now) }));
}
