import { sql, type Kysely } from 'kysely';

// Frozen: audit events staged by request transactions, chained afterwards by the sealer.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_pending')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_type', 'text')
    .addColumn('target_id', 'text')
    .addColumn('request_id', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .execute();
  // A staged event is moved into the chain or stays; it is never edited.
  await sql`
    create function audit_pending_immutable() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_pending rows cannot be updated';
    end $$`.execute(db);
  await sql`create trigger audit_pending_no_update before update on audit_pending for each statement execute function audit_pending_immutable()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_pending').ifExists().execute();
  await sql`drop function if exists audit_pending_immutable()`.execute(db);
}
