import { execFile } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import type { Database } from '../../src/db/database.js';
import type { AuditEventInput } from '../../src/audit/audit-event.js';

/**
 * Runs raw SQL past the append-only triggers, as the schema owner could: `db` must be the owner's
 * connection (TestDatabase.db), since the broker's role may not even try. The triggers are disabled
 * inside this transaction only: a failing statement rolls the disabling back with it.
 */
export async function tamper(db: Database, ...statements: Array<ReturnType<typeof sql>>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`alter table audit_events disable trigger audit_events_append_only`.execute(trx);
    await sql`alter table audit_anchor disable trigger audit_anchor_guarded`.execute(trx);
    for (const statement of statements) await statement.execute(trx);
    await sql`alter table audit_events enable trigger audit_events_append_only`.execute(trx);
    await sql`alter table audit_anchor enable trigger audit_anchor_guarded`.execute(trx);
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

/** The `tessera` CLI as a child process against `brokerUrl` (admin key from `adminKey`): exit code and both streams. */
export function tessera(brokerUrl: string, adminKey: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH, TESSERA_URL: brokerUrl, TESSERA_ADMIN_KEY: adminKey };
  return new Promise((resolve) =>
    execFile(process.execPath, [path.resolve('bin/tessera.js'), ...args], { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}
