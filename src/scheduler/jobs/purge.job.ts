import { sql } from 'kysely';
import type { Database } from '../../db/database.js';
import type { JobResult } from '../job.js';

/** Client-assertion jtis are kept a little past their expiry: the replay check compares against `exp`. */
const ASSERTION_JTI_GRACE_SECONDS = 600;
/** Delivered webhook rows are kept this long for support questions ("did we send it?"); failed ones stay. */
const DELIVERED_RETENTION_SECONDS = 30 * 24 * 3600;
/** Rows deleted per statement, so a large backlog never holds long locks. */
const PURGE_BATCH = 5_000;

async function purgeBatches(db: Database, statement: (limit: number) => ReturnType<typeof sql>): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await statement(PURGE_BATCH).execute(db);
    const n = Number(r.numAffectedRows ?? 0);
    total += n;
    if (n < PURGE_BATCH) return total;
  }
}

/** Purges expired replay-cache entries and delivered webhook rows past retention. */
export async function purgeExpired(deps: { db: Database }, now: Date): Promise<JobResult> {
  const jtiCutoff = new Date(now.getTime() - ASSERTION_JTI_GRACE_SECONDS * 1000);
  const deliveredCutoff = new Date(now.getTime() - DELIVERED_RETENTION_SECONDS * 1000);
  const jtis = await purgeBatches(deps.db, (n) => sql`
    delete from assertion_jtis where ctid = any(array(
      select ctid from assertion_jtis where expires_at < ${jtiCutoff} limit ${n}))`);
  const deliveries = await purgeBatches(deps.db, (n) => sql`
    delete from webhook_deliveries where id in (
      select id from webhook_deliveries where status = 'delivered' and delivered_at < ${deliveredCutoff} limit ${n})`);
  return { processed: jtis + deliveries, detail: { assertion_jtis: jtis, webhook_deliveries: deliveries } };
}
