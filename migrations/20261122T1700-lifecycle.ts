import { sql, type Kysely } from 'kysely';

// Frozen: grant lifecycle (expiry, revocation, introspection, status list, events) as of 2026-11-22.
// Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Token Status List index of each grant, allocated at mint; older grants have none.
  await sql`create sequence grant_status_idx_seq as integer minvalue 0 start 0`.execute(db);
  await db.schema.alterTable('grants').addColumn('status_idx', 'integer', (c) => c.unique()).execute();
  // The decision that ended a grant (continuous re-evaluation), beside the decision that minted it.
  await db.schema.alterTable('grants').addColumn('end_decision_id', 'uuid').execute();
  // Emergency key revocation finds every grant a key signed; rotation finds their last expiry.
  await db.schema.createIndex('grants_kid').on('grants').columns(['kid', 'expires_at']).execute();

  // The signed Status List Token, published by one replica and served by all.
  await db.schema
    .createTable('status_lists')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();

  // RFC 7662 introspection clients (resource servers), authenticated with HTTP Basic.
  await db.schema
    .createTable('resource_servers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_sha256', 'text', (c) => c.notNull())
    .addColumn('audiences', sql`text[]`, (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  // One Security Event per grant end: the outbox that webhooks (and audit) read.
  await db.schema
    .createTable('security_events')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('grant_id', 'uuid', (c) => c.notNull().unique().references('grants.id'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('webhook_subscriptions')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('disabled_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('event_id', 'uuid', (c) => c.notNull().references('security_events.id'))
    .addColumn('subscription_id', 'uuid', (c) => c.notNull().references('webhook_subscriptions.id'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('delivered_at', 'timestamptz')
    .addUniqueConstraint('webhook_deliveries_once', ['event_id', 'subscription_id'])
    .execute();
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['webhook_deliveries', 'webhook_subscriptions', 'security_events', 'resource_servers', 'status_lists']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
  await db.schema.dropIndex('grants_kid').ifExists().execute();
  await db.schema.alterTable('grants').dropColumn('end_decision_id').execute();
  await db.schema.alterTable('grants').dropColumn('status_idx').execute();
  await sql`drop sequence if exists grant_status_idx_seq`.execute(db);
}
