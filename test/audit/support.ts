import { sql } from 'kysely';
import type { Database } from '../../src/db/database.js';
import type { AuditEventInput } from '../../src/audit/audit-event.js';

/**
 * Runs raw SQL past the append-only trigger, as an attacker with superuser rights could: tests connect
 * as the embedded superuser, and `session_replication_role = replica` (set local: this transaction
 * only) skips ordinary triggers. `alter table audit_events disable trigger user` would work as well but
 * takes an exclusive lock and outlives the transaction if a test fails midway.
 */
export async function tamper(db: Database, ...statements: Array<ReturnType<typeof sql>>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    for (const statement of statements) await statement.execute(trx);
  });
}

/** A plausible event, distinct per `i`. */
export const sampleEvent = (i: number): AuditEventInput => ({
  actor: 'workload:deploy-bot',
  action: 'grant.minted',
  outcome: 'success',
  target_type: 'grant',
  target_id: `grant-${i}`,
  request_id: `req-${i}`,
  data: { task: 'deploy-prod', params: { service: 'api', n: i }, token_sha256: 'ab'.repeat(32) },
});
