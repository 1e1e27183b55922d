import { flushPendingAudit } from '../../src/audit/audit-outbox.js';
import type { Database } from '../../src/db/database.js';

/** Chains every staged audit event now (what a broker's sealer would do over its next runs); returns how many. */
export async function sealAll(db: Database): Promise<number> {
  let sealed = 0;
  for (let n = -1; n !== 0; sealed += n) n = Math.max(0, await flushPendingAudit(db, new Date()));
  return sealed;
}
