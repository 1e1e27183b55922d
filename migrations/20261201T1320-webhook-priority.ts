import { sql, type Kysely } from 'kysely';

// Frozen: webhook deliveries are claimed by priority, and failed ones are counted from an index (2026-12-01).
// Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // 0 = a revocation (a receiver must act on it now), 1 = an expiry or completion (informational): a
  // backlog of 10,000 expiries must not hold a revocation's Security Event Token behind it.
  await db.schema.alterTable('webhook_deliveries').addColumn('priority', 'smallint', (c) => c.notNull().defaultTo(1)).execute();
  await sql`drop index if exists webhook_deliveries_due`.execute(db);
  await sql`create index webhook_deliveries_due on webhook_deliveries (priority, next_attempt_at) where status = 'pending'`.execute(db);
  // /metrics counts what could not be delivered on every scrape, on every replica.
  await sql`create index webhook_deliveries_failed on webhook_deliveries (id) where status = 'failed'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists webhook_deliveries_failed`.execute(db);
  await sql`drop index if exists webhook_deliveries_due`.execute(db);
  await db.schema.alterTable('webhook_deliveries').dropColumn('priority').execute();
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`.execute(db);
}
