import type { Database } from '../db/database.js';
import { invalidRequest } from '../lib/errors.js';
import type { DecisionRow } from './decision.repository.js';

/** An opaque cursor: the (created_at, id) of the last row of the previous page. */
const encodeCursor = (d: DecisionRow) => Buffer.from(`${d.created_at.toISOString()}|${d.id}`).toString('base64url');
function decodeCursor(c: string): [Date, string] {
  const [at, id] = Buffer.from(c, 'base64url').toString().split('|');
  const date = new Date(at ?? '');
  if (!id || Number.isNaN(date.getTime())) throw invalidRequest('Bad cursor.', [{ field: 'cursor', reason: 'not a cursor this API returned' }]);
  return [date, id];
}

/** Newest first, filtered, keyset-paginated (stable under concurrent inserts). */
export async function listDecisions(
  db: Database,
  q: { workload?: string | undefined; task?: string | undefined; outcome?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: DecisionRow[]; nextCursor: string | null }> {
  let query = db.selectFrom('decisions').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
  if (q.workload) query = query.where('workload_id', '=', q.workload);
  if (q.task) query = query.where('task', '=', q.task);
  if (q.outcome) query = query.where('outcome', '=', q.outcome as DecisionRow['outcome']);
  if (q.cursor) {
    const [at, id] = decodeCursor(q.cursor);
    query = query.where((eb) => eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', id)])]));
  }
  const rows = await query.execute();
  const items = rows.slice(0, q.limit);
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1]!) : null };
}
