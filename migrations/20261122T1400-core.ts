import { sql, type Kysely } from 'kysely';

// Frozen: this file describes the schema as it was on 2026-11-22 and imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Configuration-as-code: each apply is one version; `registry_epoch` tells replicas to reload.
  await db.schema
    .createTable('config_versions')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('applied_by', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'timestamptz', (c) => c.notNull())
    .addColumn('summary', 'jsonb', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('registry_epoch')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into registry_epoch (id, epoch) values (1, 0)`.execute(db);

  await db.schema
    .createTable('issuers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('tasks')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('workloads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('ci', 'agent', 'service')`))
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'suspended', 'retired')`))
    .addColumn('status_reason', 'text')
    .addColumn('status_changed_by', 'text')
    .addColumn('status_changed_at', 'timestamptz')
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('grants')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('workload_id', 'text', (c) => c.notNull())
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text')
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('active', 'expired', 'completed', 'revoked')`),
    )
    .addColumn('ended_at', 'timestamptz')
    .addColumn('ended_by', 'text')
    .addColumn('end_reason', 'text')
    .addColumn('decision_id', 'uuid')
    .addColumn('approval_id', 'uuid')
    .addColumn('parent_id', 'uuid', (c) => c.references('grants.id'))
    .addColumn('use_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_uses', 'integer')
    .addColumn('cnf_jkt', 'text')
    .addColumn('kid', 'text', (c) => c.notNull())
    .addColumn('token_sha256', 'text', (c) => c.notNull())
    .addColumn('identity', 'jsonb', (c) => c.notNull())
    .execute();
  await sql`create index grants_active_expiry on grants (expires_at) where status = 'active'`.execute(db);
  await db.schema.createIndex('grants_workload').on('grants').columns(['workload_id', 'issued_at']).execute();
  await db.schema.createIndex('grants_parent').on('grants').column('parent_id').execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('private_key_enc', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('next', 'current', 'retired', 'revoked')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('activated_at', 'timestamptz')
    .addColumn('retired_at', 'timestamptz')
    .addColumn('publish_until', 'timestamptz')
    .execute();
  // At most one key signs at a time, across every replica.
  await sql`create unique index signing_keys_one_current on signing_keys (status) where status = 'current'`.execute(db);

  // RFC 7523 client assertions: a jti is accepted once per workload, across every replica.
  await db.schema
    .createTable('assertion_jtis')
    .addColumn('workload_id', 'text', (c) => c.notNull())
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('assertion_jtis_pk', ['workload_id', 'jti'])
    .execute();

  await db.schema
    .createTable('admin_keys')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('viewer', 'approver', 'operator', 'admin')`))
    .addColumn('key_sha256', 'text', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'admin_keys',
    'assertion_jtis',
    'signing_keys',
    'grants',
    'workloads',
    'tasks',
    'issuers',
    'registry_epoch',
    'config_versions',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
