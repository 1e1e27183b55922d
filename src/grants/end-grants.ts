import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { retryOnDeadlock } from '../lib/retry.js';
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
  /**
   * Moves each batch's end time on by the time this clock says has passed since the first batch, so a
   * long sweep records when each grant really ended (and its lag) instead of when the sweep began.
   */
  clock?: Clock;
  /** Called after each committed batch with its end time (metrics, logs). */
  onBatch?: (rows: GrantRow[], at: Date) => void;
}

/** One batch: the state changes and their events, in the caller's transaction. */
async function endBatch(trx: Database, selector: GrantSelector, end: GrantEnd, o: EndGrantsOptions): Promise<GrantRow[]> {
  const changed = await endActiveGrants(trx, selector, end, { cascade: o.cascade, limit: o.batchSize ?? END_BATCH_SIZE, skipLocked: o.skipLocked ?? false });
  await recordGrantsEnded(trx, changed, end.at, end.requestId ?? null);
  return changed;
}

/** Named grants take one batch; selectors run until nothing they pick is left active. */
const lastBatch = (selector: GrantSelector, rows: GrantRow[]) => 'grantIds' in selector || rows.length === 0;

/**
 * Ends every grant the selector picks, batch by batch; each batch commits its state changes together
 * with their events, so a process killed mid-run leaves every grant either untouched or ended with its
 * event. A batch Postgres aborts to break a deadlock (two cascades over overlapping trees) runs again.
 * Returns the grants this call ended (none that another caller ended first).
 */
export async function endGrants(db: Database, selector: GrantSelector, end: GrantEnd, o: EndGrantsOptions): Promise<GrantRow[]> {
  const ended: GrantRow[] = [];
  const started = o.clock?.now().getTime();
  for (;;) {
    const at = started === undefined ? end.at : new Date(end.at.getTime() + o.clock!.now().getTime() - started);
    const rows = await retryOnDeadlock(() => db.transaction().execute((trx) => endBatch(trx, selector, { ...end, at }, o)));
    o.onBatch?.(rows, at);
    ended.push(...rows);
    if (lastBatch(selector, rows)) return ended;
  }
}

/**
 * The same inside the caller's transaction, so the ends commit atomically with what caused them (a
 * workload's status change, a configuration version). The caller owns the transaction and its retries.
 */
export async function endGrantsInTransaction(trx: Database, selector: GrantSelector, end: GrantEnd, o: { cascade: boolean }): Promise<GrantRow[]> {
  const ended: GrantRow[] = [];
  for (;;) {
    const rows = await endBatch(trx, selector, end, o);
    ended.push(...rows);
    if (lastBatch(selector, rows)) return ended;
  }
}
