import type { Database } from '../db/database.js';
import { endActiveGrants, type GrantEnd, type GrantRow, type GrantSelector } from './grant.repository.js';
import { recordGrantsEnded } from './grant-events.js';

/**
 * Grants ended per transaction. Large enough that 10,000 expiries take a few dozen round trips, small
 * enough that one transaction's locks and its event insert stay well under the statement timeout.
 */
export const END_BATCH_SIZE = 500;

export interface EndGrantsOptions {
  cascade: boolean;
  skipLocked?: boolean;
  batchSize?: number;
  /** Called after each committed batch (metrics, logs). */
  onBatch?: (rows: GrantRow[]) => void;
}

/**
 * Ends every grant the selector picks, batch by batch; each batch commits its state changes together
 * with their events, so a process killed mid-run leaves every grant either untouched or ended with its
 * event. Returns the grants this call ended (none that another caller ended first).
 */
export async function endGrants(db: Database, selector: GrantSelector, end: GrantEnd, o: EndGrantsOptions): Promise<GrantRow[]> {
  const limit = o.batchSize ?? END_BATCH_SIZE;
  const ended: GrantRow[] = [];
  for (;;) {
    const rows = await db.transaction().execute(async (trx) => {
      const changed = await endActiveGrants(trx, selector, end, { cascade: o.cascade, limit, skipLocked: o.skipLocked ?? false });
      await recordGrantsEnded(trx, changed, end.at, end.requestId ?? null);
      return changed;
    });
    o.onBatch?.(rows);
    ended.push(...rows);
    // Named grants take one statement; selectors run until nothing they pick is left active.
    if ('grantIds' in selector || rows.length === 0) return ended;
  }
}
