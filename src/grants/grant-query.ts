import type { Database } from '../db/database.js';
import type { GrantRow } from './grant.repository.js';
import type { GrantStatus } from './grant.table.js';

export interface GrantFilter {
  workload?: string | undefined;
  task?: string | undefined;
  status?: GrantStatus | undefined;
  /** Only grants still usable at this time: status active and not past their expiry. */
  activeAt?: Date | undefined;
}

/** Where a page of grants ends: newest first, so the key is (issued_at, id) descending. */
export interface GrantPageKey {
  issued_at: string;
  id: string;
}

/** Grants matching `filter`, newest first, starting after `after`. */
export async function listGrants(db: Database, filter: GrantFilter, after: GrantPageKey | undefined, take: number): Promise<GrantRow[]> {
  let q = db.selectFrom('grants').selectAll().orderBy('issued_at', 'desc').orderBy('id', 'desc').limit(take);
  if (filter.workload) q = q.where('workload_id', '=', filter.workload);
  if (filter.task) q = q.where('task', '=', filter.task);
  if (filter.status) q = q.where('status', '=', filter.status);
  if (filter.activeAt) q = q.where('status', '=', 'active').where('expires_at', '>', filter.activeAt);
  if (after) q = q.where((eb) => eb(eb.refTuple('issued_at', 'id'), '<', eb.tuple(new Date(after.issued_at), after.id)));
  return q.execute();
}

/** The page key of a grant row. */
export const grantPageKey = (g: GrantRow): GrantPageKey => ({ issued_at: g.issued_at.toISOString(), id: g.id });
