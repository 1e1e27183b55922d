import { sql, type Kysely } from 'kysely';

// Frozen: the active-grants signal reads an index alone (2026-12-01). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // The signal counts a workload's unexpired active grants (up to a cap) on every request: with
  // expires_at in the index the count is an index-only range scan, not a heap visit per active grant.
  await sql`create index grants_workload_active_expiry on grants (workload_id, expires_at) where status = 'active'`.execute(db);
  await sql`drop index if exists grants_workload_active`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`create index grants_workload_active on grants (workload_id) where status = 'active'`.execute(db);
  await sql`drop index if exists grants_workload_active_expiry`.execute(db);
}
