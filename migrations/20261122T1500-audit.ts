import { sql, type Kysely } from 'kysely';

// Frozen: this file describes the audit schema as it was on 2026-11-22 and imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // seq is assigned by the appender under an advisory lock (not a sequence), so it is gapless:
  // a rolled-back append leaves no hole, and a hole therefore always means a deleted row.
  await db.schema
    .createTable('audit_events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey().check(sql`seq > 0`))
    .addColumn('id', 'uuid', (c) => c.notNull().unique())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_type', 'text')
    .addColumn('target_id', 'text')
    .addColumn('request_id', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull().check(sql`prev_hash ~ '^[0-9a-f]{64}$'`))
    .addColumn('hash', 'text', (c) => c.notNull().check(sql`hash ~ '^[0-9a-f]{64}$'`))
    .execute();
  await db.schema.createIndex('audit_events_target').on('audit_events').columns(['target_type', 'target_id']).execute();
  await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();

  // Where the chain starts after retention: the seq and hash of the last purged event (genesis: 0 and
  // 64 zeros). Verification starts from here, so what remains is still proven linked end to end.
  await db.schema
    .createTable('audit_anchor')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('seq', 'bigint', (c) => c.notNull().check(sql`seq >= 0`))
    .addColumn('hash', 'text', (c) => c.notNull().check(sql`hash ~ '^[0-9a-f]{64}$'`))
    .addColumn('updated_at', 'timestamptz')
    .execute();
  await sql`insert into audit_anchor (id, seq, hash) values (1, 0, repeat('0', 64))`.execute(db);

  // A trigger rather than GRANTs because the embedded broker connects as a superuser, whom GRANTs do
  // not bind but ordinary triggers do. Retention opens the door for one transaction with
  // `set local tessera.audit_retention = 'on'`: it may delete events and move the anchor, nothing else.
  await sql`
    create function tessera_audit_guard() returns trigger language plpgsql as $$
    begin
      if coalesce(current_setting('tessera.audit_retention', true), '') = 'on'
         and ((tg_table_name = 'audit_events' and tg_op = 'DELETE')
              or (tg_table_name = 'audit_anchor' and tg_op = 'UPDATE')) then
        return null;
      end if;
      raise exception '% on % refused: the audit log is append-only', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  // Statement-level, so a retention purge of a million rows runs the check once, not a million times.
  await sql`
    create trigger audit_events_append_only before update or delete or truncate on audit_events
    for each statement execute function tessera_audit_guard()`.execute(db);
  await sql`
    create trigger audit_anchor_guarded before update or delete or truncate on audit_anchor
    for each statement execute function tessera_audit_guard()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_anchor').ifExists().execute();
  await db.schema.dropTable('audit_events').ifExists().execute();
  await sql`drop function if exists tessera_audit_guard()`.execute(db);
}
