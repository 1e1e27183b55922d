import { sql } from 'kysely';
import { isRowError, type Database } from '../db/database.js';
import { metrics } from '../lib/metrics.js';
import type { Logger } from 'pino';
import { retryOnDeadlock } from '../lib/retry.js';
import type { GrantRow } from './grant.repository.js';
import { endGrantsInTransaction } from './end-grants.js';
import { dueCondition, freshFor, type DueSignals, type watchOf } from './reevaluation-due.js';

/** Which active grants to re-evaluate: every one (a new policy version), one workload's, or those due. */
export interface ReevaluationFilter {
  workloadId?: string;
  /** Only grants whose latest decision is out of date with the signals (see dueCondition). */
  due?: DueSignals;
  /**
   * Leave alone the grants whose failed re-evaluation is backing off (see REEVALUATION_BACKOFF): the
   * scheduled sweep's choice. A signal's own hook and an operator's run try them anyway: a new
   * observation, or a person asking, is worth one more attempt.
   */
  backoff?: boolean;
}

/**
 * After a grant's n-th failed re-evaluation in a row the sweep waits 5 s × 2^(n-1), at most 5 min,
 * before it tries the grant again (every run tried it, every 5 s, on every replica, for as long as
 * the grant lived). The grant stays active meanwhile: a broken policy engine must not revoke.
 */
export const REEVALUATION_BACKOFF = { firstSeconds: 5, maxSeconds: 300 } as const;

/** The retry moment after one more failure, from the grant row's failures so far. */
const retryAtSql = (now: Date) =>
  sql<Date>`${now}::timestamptz + make_interval(secs => least(${REEVALUATION_BACKOFF.firstSeconds} * power(2, least(reevaluation_failures, 30)), ${REEVALUATION_BACKOFF.maxSeconds}))`;

/** The policy's answer for one active grant, now. */
export interface Verdict {
  allowed: boolean;
  reason: string;
  /** The decision behind the verdict: the revocation links to it, and the grant remembers it. */
  decisionId: string | null;
  /** What the grant keeps of that decision for the sweep (see watchOf), with it. */
  watch?: ReturnType<typeof watchOf>;
  /** Records that decision inside the re-evaluation's transaction; never called in a dry run. */
  record?: (trx: Database) => Promise<void>;
}

export type GrantDecide = (grant: GrantRow, now: Date) => Promise<Verdict>;

export interface ReevaluationResult {
  evaluated: number;
  /** Grants revoked (or, in a dry run, that would be), with why; cascaded children included. */
  revoked: Array<{ grant_id: string; reason: string; decision_id: string | null; cascaded: boolean }>;
  /** Grants whose decision failed or whose writes Postgres refused: left active (and due), counted, logged. */
  failed: Array<{ grant_id: string; error: string }>;
  dry_run: boolean;
  /** With candidates: how many there were (through the indexes, and the ids asked about), and how many were due. */
  candidates?: { found: number; due: number };
}

/**
 * Grants per transaction. Their rows stay locked while they are decided (a few milliseconds each),
 * which holds up an introspection of the same grant for at most that long. Each grant's writes take a
 * savepoint (see ownWrites), a subtransaction until the page commits: Postgres caches 64 of them per
 * transaction and slows down every session past that, so a page stays well below.
 */
const PAGE_SIZE = 20;

/** Grants a re-evaluation could not decide or write, by why (decision, write). */
export const reevaluationsFailed = metrics.counter('tessera_reevaluations_failed_total', 'Grants a re-evaluation left active because their decision failed or Postgres refused their writes.');

/**
 * Continuous authorization: asks `decide` about every active grant the filter picks, records each
 * decision with the grant's re-evaluation mark, and revokes (with children) those no longer allowed,
 * linked to the decision that refused them. Each page is one transaction over rows locked FOR UPDATE,
 * and the due sweep skips rows another replica holds: of several replicas (and the signal hook) each
 * grant is decided once and gets one decision, one end and one event. A decision that throws, or whose
 * writes Postgres refuses (see ownWrites), leaves its grant active and due and is in `failed`: a broken
 * policy engine must not become a kill switch. A dry run locks, records and revokes nothing.
 */
export async function reevaluateActiveGrants(
  deps: { db: Database; log?: Logger },
  filter: ReevaluationFilter,
  decide: GrantDecide,
  now: Date,
  options: { dryRun?: boolean; actor?: string } = {},
): Promise<ReevaluationResult> {
  const result: ReevaluationResult = { evaluated: 0, revoked: [], failed: [], dry_run: options.dryRun ?? false };
  const run = (page: Page) =>
    result.dry_run
      ? decidePage(deps, deps.db, filter, decide, now, page, result, options)
      : retryOnDeadlock(() => deps.db.transaction().execute((trx) => decidePage(deps, trx, filter, decide, now, page, result, options)));
  const candidates = filter.due?.candidates;
  if (candidates) {
    const found = await candidateIds(deps.db, candidates, filter.due!.maxAges, now);
    const ids = await dueAmong(deps.db, filter, now, found);
    result.candidates = { found: found.length, due: ids.length };
    for (let i = 0; i < ids.length; i += PAGE_SIZE) await run({ ids: ids.slice(i, i + PAGE_SIZE) });
    return result;
  }
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const page = await run({ after });
    if (page.length < PAGE_SIZE) return result;
    after = page[page.length - 1]!.id;
  }
}

/** A page of grants: the next PAGE_SIZE in id order after a cursor, or these candidates. */
type Page = { after: string } | { ids: string[] };

/**
 * The ids of the grants that can be due (see DueSignals.candidates), each part through its own index:
 * the GIN index for the keys, the due_at index for the time. Asked apart and before the paged test,
 * so that the planner never trades them for a walk of every watching grant in id order. Of the grants
 * watching a key, those its newest observation leaves not due by what their rows hold (freshFor) are
 * not candidates for it: with 35,000 grants watching an attestor's subject, testing each against its
 * decision on every heartbeat cost Postgres 41 s of CPU a minute.
 */
async function candidateIds(db: Database, c: NonNullable<DueSignals['candidates']>, maxAges: DueSignals['maxAges'], now: Date): Promise<string[]> {
  const watching = sql`g.status = 'active' and g.watches_signals`;
  const newest = { observed_at: sql`l.observed_at`, value: sql`l.value`, expires_at: sql`l.expires_at` };
  const parts = [
    ...(c.keys.length
      ? [
          sql`select g.id from (select key, split_part(key, ':', 1) as type, substr(key, strpos(key, ':') + 1) as subject from unnest(${c.keys}::text[]) key) k
            left join lateral (select s.observed_at, s.value, s.expires_at from signals s where s.type = k.type and s.subject = k.subject
              order by s.observed_at desc, s.id desc limit 1) l on true
            join grants g on g.watched_keys @> array[k.key] and ${watching}
            where not ${freshFor(sql<string>`k.key`, sql<string>`k.type`, newest, maxAges, now)}`,
        ]
      : []),
    ...(c.byTime ? [sql`select g.id from grants g where ${watching} and g.due_at <= ${now}`] : []),
  ];
  const ids = new Set(c.ids);
  if (parts.length) for (const r of (await sql<{ id: string }>`${sql.join(parts, sql` union `)}`.execute(db)).rows) ids.add(r.id);
  return [...ids].sort();
}

/** The grants of a page that the filter selects, as of `now`. */
const pageWhere = (filter: ReevaluationFilter, now: Date, page: Page) => sql<boolean>`
  g.status = 'active' and g.expires_at > ${now} and ${'ids' in page ? sql`g.id = any(${page.ids}::uuid[])` : sql`g.id > ${page.after}`}
    ${filter.workloadId !== undefined ? sql`and g.workload_id = ${filter.workloadId}` : sql``}
    ${filter.backoff ? sql`and (g.reevaluation_retry_at is null or g.reevaluation_retry_at <= ${now})` : sql``}
    ${filter.due ? sql`and g.watches_signals and ${dueCondition(filter.due, now)}` : sql``}`;

/** Candidates tested per statement by dueAmong: each costs Postgres some 15-30 µs, so a statement stays well under 100 ms. */
const DUE_CHUNK = 2_000;

/**
 * The candidates that are due, tested without locks, a chunk per statement. A signal's arrival makes
 * every grant watching its key a candidate for the lookback's length (a minute of runs), and nearly
 * all of them saw it already: paging through them, a transaction of three statements per 20 grants,
 * cost a run over 5 s (two thousand pages) at 40,000 grants watching one key. The pages then lock and
 * test only these again, so a grant decided meanwhile is skipped, and one that became due after this
 * read is the next run's (its signal's arrival is within that run's lookback).
 */
async function dueAmong(db: Database, filter: ReevaluationFilter, now: Date, ids: string[]): Promise<string[]> {
  const due: string[] = [];
  for (let i = 0; i < ids.length; i += DUE_CHUNK) {
    const { rows } = await sql<{ id: string }>`select g.id from grants g where ${pageWhere(filter, now, { ids: ids.slice(i, i + DUE_CHUNK) })} order by g.id`.execute(db);
    for (const r of rows) due.push(r.id);
  }
  return due;
}

async function decidePage(
  deps: { log?: Logger },
  db: Database,
  filter: ReevaluationFilter,
  decide: GrantDecide,
  now: Date,
  page: Page,
  result: ReevaluationResult,
  options: { dryRun?: boolean; actor?: string },
): Promise<GrantRow[]> {
  const lock = result.dry_run ? sql`` : filter.due ? sql`for update of g skip locked` : sql`for update of g`;
  const { rows: grants } = await sql<GrantRow>`
    select g.* from grants g where ${pageWhere(filter, now, page)}
    order by g.id limit ${PAGE_SIZE} ${lock}`.execute(db);
  const revoked: ReevaluationResult['revoked'] = [];
  const failed: ReevaluationResult['failed'] = [];
  const leaveDue = async (grant: GrantRow, err: unknown, what: 'decision' | 'write') => {
    failed.push({ grant_id: grant.id, error: (err as Error).message });
    if (!result.dry_run) reevaluationsFailed.inc({ stage: what });
    // Left due by time, so sweeps test it again long after the signal's arrival (once its backoff has
    // passed), until a decision succeeds and writes its own due_at (a skipped or aborted run loses
    // nothing). When Postgres refuses this too, the grant is still in `failed`, which the sweep asks
    // about again.
    const backoff = result.dry_run ? undefined : await markFailed(db, grant.id, now, deps.log);
    deps.log?.error(
      { grant_id: grant.id, err: (err as Error).message, failures: backoff?.failures, retry_at: backoff?.retry_at },
      `re-evaluation ${what === 'decision' ? 'failed' : 'could not be written'}; grant left active`,
    );
  };
  for (const grant of grants) {
    let verdict: Verdict;
    try {
      verdict = await decide(grant, now);
    } catch (err) {
      await leaveDue(grant, err, 'decision');
      continue;
    }
    if (result.dry_run) {
      if (!verdict.allowed) revoked.push({ grant_id: grant.id, reason: verdict.reason, decision_id: verdict.decisionId, cascaded: false });
      continue;
    }
    try {
      revoked.push(...(await ownWrites(db, () => applyVerdict(db, grant, verdict, now, options.actor))));
    } catch (err) {
      if (!isRowError(err)) throw err;
      await leaveDue(grant, err, 'write');
    }
  }
  // Added at the end of the page, so a page aborted midway (and retried) is not counted twice.
  result.evaluated += grants.length;
  result.revoked.push(...revoked);
  result.failed.push(...failed);
  return grants;
}

/**
 * Leaves a grant whose re-evaluation failed due, one failure further into its backoff; what it wrote,
 * or undefined when Postgres refused the grant's row this too (other errors fail the run).
 */
async function markFailed(db: Database, grantId: string, now: Date, log: Logger | undefined): Promise<{ failures: number; retry_at: Date } | undefined> {
  try {
    const { rows } = await ownWrites(db, () =>
      sql<{ failures: number; retry_at: Date }>`update grants set due_at = least(due_at, ${now}),
        reevaluation_retry_at = ${retryAtSql(now)}, reevaluation_failures = reevaluation_failures + 1
        where id = ${grantId} returning reevaluation_failures as failures, reevaluation_retry_at as retry_at`.execute(db),
    );
    return rows[0];
  } catch (e) {
    if (!isRowError(e)) throw e;
    log?.error({ grant_id: grantId, err: (e as Error).message }, 're-evaluation could not leave the grant due');
    return undefined;
  }
}

/** Records a verdict on its grant and, when it is no longer allowed, revokes it with its children. */
async function applyVerdict(db: Database, grant: GrantRow, verdict: Verdict, now: Date, actor: string | undefined): Promise<ReevaluationResult['revoked']> {
  await verdict.record?.(db);
  await db
    .updateTable('grants')
    // Without a watch the grant's watch_basis no longer names its latest decision: the next sweep works it out.
    .set({ reevaluated_at: now, reevaluation_failures: 0, reevaluation_retry_at: null, ...(verdict.record && { reevaluation_decision_id: verdict.decisionId, ...verdict.watch }) })
    .where('id', '=', grant.id)
    .execute();
  if (verdict.allowed) return [];
  const end = { status: 'revoked' as const, by: actor ?? 'policy:reevaluation', reason: verdict.reason, at: now, decisionId: verdict.decisionId };
  return (await endGrantsInTransaction(db, { grantIds: [grant.id] }, end, { cascade: true })).map((g) => ({
    grant_id: g.id,
    reason: g.end_reason ?? verdict.reason,
    decision_id: g.end_decision_id,
    cascaded: g.id !== grant.id,
  }));
}

/**
 * Runs one grant's writes in a savepoint of the page's transaction: one grant whose rows Postgres
 * refuses (isRowError: a value, a constraint, a trigger) costs only its own writes (it is left due and
 * counted as failed), not its page's, nor the rest of the run's (a run that stopped at the same grant
 * every time would never re-decide the grants after it). Any other error is the database's or the
 * transaction's (unreachable, out of disk, deadlocked): the page is retried or the run fails, and the
 * next run starts from the same point.
 */
async function ownWrites<T>(db: Database, writes: () => Promise<T>): Promise<T> {
  await sql`savepoint grant_writes`.execute(db);
  try {
    const done = await writes();
    await sql`release savepoint grant_writes`.execute(db);
    return done;
  } catch (err) {
    if (isRowError(err)) {
      await sql`rollback to savepoint grant_writes`.execute(db);
      await sql`release savepoint grant_writes`.execute(db);
    }
    throw err;
  }
}
