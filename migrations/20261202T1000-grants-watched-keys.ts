import { sql, type Kysely } from 'kysely';

// Frozen: the re-evaluation sweep finds due grants through indexes (2026-12-02). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // The sweep tested every active watching grant every 5 s on every replica: about 16 µs of Postgres
  // each (463 ms at 28,267 grants, measured), in one statement on one core. A grant can only become due
  // when a signal it read is observed anew, or when a fresh one it read goes stale. So each grant keeps
  // the (type, subject) keys it read and the first moment one of its fresh signals goes stale, and the
  // sweep asks the indexes for the grants watching the keys observed since its last run, and for those
  // whose moment has come. The exact test (dueCondition) still runs, on those alone.
  await sql`alter table grants add column watched_keys text[]`.execute(db);
  await sql`alter table grants add column due_at timestamptz`.execute(db);
  // The decision the two were worked out from. Where it is not the grant's latest decision, they are
  // out of date: a grant minted or re-decided by a broker of an older version (during a rolling
  // upgrade), or one from before this migration. Each sweep finds
  // those through the index below (empty in the steady state), works them out again and tests them.
  // The active grants of now have none: each replica's first sweep works theirs out.
  await sql`alter table grants add column watch_basis uuid`.execute(db);
  // fastupdate off: a pending list makes the insert that overflows it pay for merging the whole list.
  await sql`create index grants_active_watched on grants using gin (watched_keys) with (fastupdate = off) where status = 'active' and watches_signals`.execute(db);
  // Only rows with a moment: the sweep's `due_at <= $now` implies it, and a scan of every active
  // watching grant in id order (bringing due_at up to date) finds no reason to walk this index instead.
  await sql`create index grants_active_due on grants (due_at) where status = 'active' and watches_signals and due_at is not null`.execute(db);
  await sql`
    create index grants_watch_outdated on grants (id)
    where status = 'active' and watches_signals and watch_basis is distinct from coalesce(reevaluation_decision_id, decision_id)`.execute(db);
  // The observations that arrived since the sweep's last run.
  await sql`create index signals_received on signals (received_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists signals_received`.execute(db);
  await sql`drop index if exists grants_watch_outdated`.execute(db);
  await sql`drop index if exists grants_active_due`.execute(db);
  await sql`drop index if exists grants_active_watched`.execute(db);
  await sql`alter table grants drop column watch_basis`.execute(db);
  await sql`alter table grants drop column due_at`.execute(db);
  await sql`alter table grants drop column watched_keys`.execute(db);
}
