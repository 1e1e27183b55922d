import { sql } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { ARRIVAL_LOOKBACK_MS, arrivedSince } from '../../src/decisions/reevaluation.js';
import { reevaluateActiveGrants, type GrantDecide } from '../../src/grants/reevaluate.js';
import { median } from '../lib/stats.js';

/** Nothing is due in the bench (its one signal stays fresh for the run): a decision would be a bug here. */
const neverAsked: GrantDecide = () => Promise.reject(new Error('the bench sweep found a grant due'));

export interface SweepCost {
  /** Active grants that watch a signal: what a full test reads. */
  watching: number;
  /** One test of every watching grant: a broker's first runs, and what every run did before. */
  fullMs: number;
  /** One candidates' run: the arrivals since the last run, then the candidates through their indexes. */
  candidatesMs: number;
  rounds: number;
}

/**
 * The re-evaluation sweep's cost on the grants the load steps left active, both ways, as dry runs
 * (nothing locked or written) in rounds, median of each. This is Postgres time that the scheduler
 * spends every 5 s on each replica, beside the load.
 */
export async function benchReevaluationSweep(db: Database, maxAges: Record<string, number>, rounds = 3): Promise<SweepCost> {
  const watching = Number((await sql<{ n: string }>`select count(*) as n from grants where status = 'active' and watches_signals`.execute(db)).rows[0]!.n);
  const full: number[] = [];
  const candidates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const now = new Date();
    let started = performance.now();
    await reevaluateActiveGrants({ db }, { due: { maxAges } }, neverAsked, now, { dryRun: true });
    full.push(performance.now() - started);
    started = performance.now();
    const keys = await arrivedSince({ db }, new Date(now.getTime() - 5_000 - ARRIVAL_LOOKBACK_MS));
    await reevaluateActiveGrants({ db }, { due: { maxAges, candidates: { keys, byTime: true } } }, neverAsked, now, { dryRun: true });
    candidates.push(performance.now() - started);
  }
  return { watching, fullMs: median(full), candidatesMs: median(candidates), rounds };
}
