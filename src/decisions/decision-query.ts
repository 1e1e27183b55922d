import type { Database } from '../db/database.js';
import type { DecisionRow } from './decision.repository.js';

export interface DecisionFilter {
  workload?: string | undefined;
  task?: string | undefined;
  outcome?: DecisionRow['outcome'] | undefined;
}

/** Where a page of decisions ends: newest first, so the key is (created_at, id) descending. */
export interface DecisionPageKey {
  created_at: string;
  id: string;
}

/** Decisions matching `filter`, newest first (stable under concurrent inserts), starting after `after`. */
export async function listDecisions(db: Database, filter: DecisionFilter, after: DecisionPageKey | undefined, take: number): Promise<DecisionRow[]> {
  let q = db.selectFrom('decisions').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(take);
  if (filter.workload) q = q.where('workload_id', '=', filter.workload);
  if (filter.task) q = q.where('task', '=', filter.task);
  if (filter.outcome) q = q.where('outcome', '=', filter.outcome);
  if (after) q = q.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(new Date(after.created_at), after.id)));
  return q.execute();
}

/** The page key of a decision row. */
export const decisionPageKey = (d: DecisionRow): DecisionPageKey => ({ created_at: d.created_at.toISOString(), id: d.id });
