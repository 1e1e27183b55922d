import { sql } from 'kysely';
import type { Deps } from '../deps.js';
import type { GrantRow } from '../grants/grant.repository.js';
import { grantPrincipal } from '../grants/grant-principal.js';
import { reevaluateActiveGrants, type GrantDecide, type ReevaluationResult, type Verdict } from '../grants/reevaluate.js';
import { WATCH_OUTDATED, watchKey, watchKeySql, watchOf, watchColumns, type DueSignals } from '../grants/reevaluation-due.js';
import type { NewSignal } from '../signals/signal.repository.js';
import { recordDecision } from './decision.repository.js';
import { canonicalJson } from '../lib/hash.js';

/**
 * Re-decides one active grant under the current policy, registry and signals, as if its workload asked
 * again now with the identity it proved then (see grantPrincipal). A workload no longer active or a
 * task removed is not allowed. The decision, whatever its outcome, is returned to be recorded (kind
 * `reevaluation`, linked to the grant): what it read is what the grant is judged on until the next
 * signal change.
 */
export function grantReevaluator(deps: Deps): GrantDecide {
  return async (grant: GrantRow, now: Date): Promise<Verdict> => {
    const rebuilt = await grantPrincipal(deps, grant, now);
    if ('refused' in rebuilt) return { allowed: false, reason: rebuilt.refused, decisionId: null };
    const task = deps.registry.snapshot.tasks.get(grant.task);
    if (!task) return { allowed: false, reason: 'the task no longer exists', decisionId: null };
    const decision = await deps.decide({ principal: rebuilt.principal, task, params: grant.params, purpose: grant.purpose, requestId: `reevaluate:${grant.id}`, reevaluation: true }, now);
    // A grant redeemed from an approval (or delegated under one) already had its step-up: only a denial ends it now.
    const allowed = decision.outcome === 'allow' || (decision.outcome === 'step_up' && grant.approval_id !== null);
    const why = decision.outcome === 'step_up' ? 'now needs step-up approval' : decision.reasons.join('; ') || 'no longer allowed';
    return {
      allowed,
      reason: allowed ? '' : `re-evaluation: ${why}`,
      decisionId: decision.id,
      watch: watchOf(decision.id, decision.signals.used),
      record: (trx) =>
        recordDecision(trx, decision, {
          workloadId: grant.workload_id,
          task: grant.task,
          requestId: null,
          request: { task: grant.task, params: grant.params, reevaluation_of: grant.id },
          ttlSeconds: null,
          grantId: grant.id,
          now,
          kind: 'reevaluation',
        }),
    };
  };
}

/** Each registered signal type's maximum age in seconds, from the registry as it is now. */
const maxAgesOf = (deps: Deps): Record<string, number> =>
  Object.fromEntries([...deps.registry.snapshot.signalTypes.values()].map((t) => [t.name, t.max_age_seconds]));

/**
 * Continuous authorization on signal arrival, at once: the grants whose latest decision read an older
 * observation about one of the signals just reported are re-decided. Only an accelerator: if this
 * process dies first, the scheduled sweep finds the same grants due.
 */
export async function reevaluateForSignals(deps: Deps, signals: NewSignal[]): Promise<ReevaluationResult> {
  const subjects = [...new Set(signals.map((s) => s.subject))];
  const keys = [...new Set(signals.map((s) => watchKey(s.type, s.subject)))];
  return reevaluateActiveGrants(deps, { due: { maxAges: maxAgesOf(deps), subjects, candidates: { keys, byTime: false } } }, grantReevaluator(deps), deps.clock.now());
}

/**
 * How far back each sweep reads arrivals before its previous run: a signal's row is stamped when its
 * ingest starts and may commit later (at most its statement timeout), and replicas' clocks differ a
 * little. A signal stamped earlier than this before the previous run is missed by this replica's
 * candidates, not by the signal hook nor by the sweep of the replica that stored it.
 */
export const ARRIVAL_LOOKBACK_MS = 60_000;
/**
 * Runs that bring due_at up to date and test every watching grant, from a broker's start and after the
 * maximum ages change: this one, and one more for the mints then in flight under the old ages here, or
 * on a replica whose registry (polled every second) saw the change later.
 */
const FULL_RUNS_AFTER_CHANGE = 2;

/** What one broker's sweep remembers between runs. */
interface SweepState {
  /** When the previous run started (undefined: none has yet). */
  lastRun?: Date;
  /** The registry's maxAgesGeneration the grants' due_at were last brought up to date with. */
  generation?: number;
  fullRunsLeft: number;
  /**
   * The grants the previous completed run could not decide or write (its `failed`), asked about again
   * by id: a grant whose row Postgres refuses even the mark that leaves it due would otherwise leave
   * the candidates once its signal's arrival is older than the lookback.
   */
  retry: readonly string[];
}
const sweeps = new WeakMap<Deps, SweepState>();

/** Grants per statement when due_at is brought up to date: each holds its rows' locks briefly. */
const RECOMPUTE_PAGE = 500;

/**
 * Brings the watched_keys, due_at and watch_basis of active watching grants up to date with their
 * latest decision and the maximum ages of now (see watchColumns), in pages: every one, or only those
 * out of date (WATCH_OUTDATED, through its partial index). A grant whose values are right is not
 * written. Returns the ids written.
 */
async function recomputeWatches(deps: Deps, maxAges: Record<string, number>, which: 'all' | 'outdated'): Promise<string[]> {
  const w = watchColumns(maxAges);
  const outdated = which === 'outdated' ? sql`and ${WATCH_OUTDATED}` : sql``;
  let after = '00000000-0000-0000-0000-000000000000';
  const written: string[] = [];
  for (;;) {
    // A grant re-decided meanwhile keeps what its re-evaluation wrote: the update re-checks its basis.
    const { rows } = await sql<{ id: string; written: boolean }>`
      with page as (select id from grants where status = 'active' and watches_signals ${outdated} and id > ${after} order by id limit ${RECOMPUTE_PAGE}),
      computed as materialized (select g.id, coalesce(g.reevaluation_decision_id, g.decision_id) as basis, ${w.watched_keys} as watched_keys, ${w.due_at} as due_at
        from grants g join page using (id)),
      written as (update grants g set watched_keys = c.watched_keys, due_at = c.due_at, watch_basis = c.basis from computed c
        where g.id = c.id and g.status = 'active' and coalesce(g.reevaluation_decision_id, g.decision_id) is not distinct from c.basis
          and (g.watched_keys is distinct from c.watched_keys or g.due_at is distinct from c.due_at or g.watch_basis is distinct from c.basis)
        returning g.id)
      select p.id, exists (select 1 from written x where x.id = p.id) as written from page p order by p.id`.execute(deps.db);
    for (const r of rows) if (r.written) written.push(r.id);
    if (rows.length < RECOMPUTE_PAGE) return written;
    after = rows[rows.length - 1]!.id;
  }
}

/**
 * Keeps what a completed run did for the next broker to start: after the last of the full runs for a
 * set of maximum ages, those ages and the run's moment; after any other run, the moment only, and only
 * while the record's ages are this broker's (a replica whose registry has newer ones writes its own).
 * A run that could not decide or write some grant drops the record instead: the grants it keeps to
 * ask about again live only in this process, and a broker that starts must look for them with full runs.
 */
async function recordSweep(db: Deps['db'], maxAges: Record<string, number>, at: Date, fullRunsDone: boolean, failed: boolean): Promise<void> {
  const ages = JSON.stringify(maxAges);
  if (failed) {
    await db.deleteFrom('reevaluation_sweep').execute();
    return;
  }
  if (fullRunsDone) {
    await db
      .insertInto('reevaluation_sweep')
      .values({ id: 1, max_ages: ages, covered_until: at })
      .onConflict((oc) => oc.column('id').doUpdateSet({ max_ages: ages, covered_until: at }))
      .execute();
    return;
  }
  await sql`update reevaluation_sweep set covered_until = greatest(covered_until, ${at}) where id = 1 and max_ages = ${ages}::jsonb`.execute(db);
}

/** The (type, subject) keys of the observations that arrived since `since`. */
export async function arrivedSince(deps: { db: Deps['db'] }, since: Date): Promise<string[]> {
  const { rows } = await sql<{ key: string }>`
    select distinct ${watchKeySql(sql`type`, sql`subject`)} as key from signals where received_at > ${since}`.execute(deps.db);
  return rows.map((r) => r.key);
}

/**
 * The scheduled, durable half: every active grant whose latest decision is out of date with the
 * signals (a newer observation arrived, or one it relied on went stale or expired) is re-decided.
 * Works from what is committed, so nothing a crash or a race lost in the signal hook stays missed.
 *
 * Testing every watching grant cost about 16 µs of Postgres each, every 5 s on every replica. So after
 * its first runs a broker tests only the candidates: grants watching a key observed since its previous
 * run (less ARRIVAL_LOOKBACK_MS), found through the GIN index on watched_keys; grants whose due_at has
 * come; grants whose watch is out of date (written by an older broker), worked out again first; and
 * the grants the previous run could not decide or write. A grant whose re-evaluations keep failing
 * waits longer between tries (see REEVALUATION_BACKOFF). Two full runs, after the maximum ages change,
 * bring every grant's due_at up to date with the ages of now and then test every watching grant. A
 * starting broker makes them too unless Postgres records (reevaluation_sweep) that completed full runs
 * used the ages it has, and that no run since left a grant undecided: then it reads arrivals from
 * where the latest completed run of any replica stopped (or from its own now, if that is earlier), and
 * a restart or a new replica costs one candidates run, not two passes over every grant.
 */
export async function reevaluateDueGrants(deps: Deps, now: Date): Promise<{ processed: number; detail: Record<string, number> }> {
  const maxAges = maxAgesOf(deps);
  const generation = deps.registry.maxAgesGeneration;
  let state = sweeps.get(deps);
  if (!state) {
    // A starting broker goes on from where the completed runs of any replica left off, if their grants'
    // due_at were brought up to date with the maximum ages it has; otherwise it starts with full runs.
    const record = await deps.db.selectFrom('reevaluation_sweep').select(['max_ages', 'covered_until']).where('id', '=', 1).executeTakeFirst();
    const goesOn = record !== undefined && canonicalJson(record.max_ages) === canonicalJson(maxAges);
    // Never later than this broker's own clock: a replica whose clock runs fast must not move its window past arrivals.
    const lastRun = goesOn ? new Date(Math.min(record.covered_until.getTime(), now.getTime())) : undefined;
    state = lastRun ? { generation, lastRun, fullRunsLeft: 0, retry: [] } : { fullRunsLeft: 0, retry: [] };
    sweeps.set(deps, state);
  }
  const since = state.lastRun;
  const detail: Record<string, number> = {};
  let due: DueSignals = { maxAges };
  if (state.generation !== generation) {
    state.generation = generation;
    state.fullRunsLeft = FULL_RUNS_AFTER_CHANGE;
  }
  const full = state.fullRunsLeft > 0 || since === undefined;
  if (full) {
    // Until these full runs complete, no starting broker may go on from the record: the due_at being
    // rewritten may match neither the record's ages nor these (a broker that dies between the runs).
    await deps.db.deleteFrom('reevaluation_sweep').execute();
    detail.recomputed = (await recomputeWatches(deps, maxAges, 'all')).length;
  } else {
    const ids = await recomputeWatches(deps, maxAges, 'outdated');
    const keys = await arrivedSince(deps, new Date(since.getTime() - ARRIVAL_LOOKBACK_MS));
    due = { maxAges, candidates: { keys, byTime: true, ids: [...ids, ...state.retry] } };
    if (ids.length) detail.outdated = ids.length;
  }
  const r = await reevaluateActiveGrants(deps, { due, backoff: true }, grantReevaluator(deps), now);
  // Only a completed run moves the window: a failed one is read again from the same point.
  const fullRunsLeft = Math.max(0, state.fullRunsLeft - 1);
  await recordSweep(deps.db, maxAges, now, full && fullRunsLeft === 0, r.failed.length > 0);
  state.fullRunsLeft = fullRunsLeft;
  if (!state.lastRun || now > state.lastRun) state.lastRun = now;
  state.retry = r.failed.map((f) => f.grant_id);
  if (r.candidates) Object.assign(detail, { candidates: r.candidates.found, due: r.candidates.due });
  return { processed: r.revoked.length, detail: { evaluated: r.evaluated, revoked: r.revoked.length, failed: r.failed.length, ...detail } };
}
