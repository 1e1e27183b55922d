import { sql, type Kysely } from 'kysely';

// Frozen: a grant whose re-evaluation keeps failing is retried less often (2026-12-03). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // A grant whose decision or writes fail stays active and due, and was retried by every sweep (every
  // 5 s, on every replica), for as long as it lived: with a broken policy engine, every due grant was
  // decided again each run. The count of consecutive failures and the moment before which the sweep
  // leaves the grant alone; both are cleared by a re-evaluation that succeeds. Constant defaults:
  // adding them rewrites no rows.
  await sql`alter table grants add column reevaluation_failures integer not null default 0`.execute(db);
  await sql`alter table grants add column reevaluation_retry_at timestamptz`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table grants drop column reevaluation_retry_at`.execute(db);
  await sql`alter table grants drop column reevaluation_failures`.execute(db);
}
