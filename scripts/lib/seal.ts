import { flushPendingAudit } from '../../src/audit/audit-outbox.js';
import type { Database } from '../../src/db/database.js';
import { sleep } from './stats.js';

/** Waits until the broker's sealer has chained every staged audit event, or `maxMs` passed; returns how many are still staged. */
export async function untilSealed(db: Database, maxMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const row = await db.selectFrom('audit_pending').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    const pending = Number(row.n);
    if (pending === 0 || Date.now() - started >= maxMs) return pending;
    await sleep(250);
  }
}

/** Chains every staged audit event now (what a broker's sealer would do over its next runs); returns how many. */
export async function sealAll(db: Database): Promise<number> {
  let sealed = 0;
  for (let n = -1; n !== 0; sealed += n) n = Math.max(0, await flushPendingAudit(db, new Date()));
  return sealed;
}
