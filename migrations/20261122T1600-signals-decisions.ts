import { sql, type Kysely } from 'kysely';

// Frozen: signals, decisions, and the broker's own history (request rates, novelty baseline).

export async function up(db: Kysely<unknown>): Promise<void> {
  // The whole applied document, so a previous version (policies included) can be restored.
  await db.schema.alterTable('config_versions').addColumn('document', 'jsonb').execute();

  await db.schema
    .createTable('signals')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('value', 'jsonb', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index signals_latest on signals (type, subject, observed_at desc)`.execute(db);

  await db.schema
    .createTable('decisions')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('workload_id', 'text', (c) => c.notNull())
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('allow', 'step_up', 'deny')`))
    .addColumn('reasons', sql`text[]`, (c) => c.notNull())
    .addColumn('errors', sql`text[]`, (c) => c.notNull())
    .addColumn('determining', sql`text[]`, (c) => c.notNull())
    .addColumn('policy_version', 'text')
    .addColumn('config_version', 'bigint')
    .addColumn('request', 'jsonb', (c) => c.notNull())
    .addColumn('signals', 'jsonb', (c) => c.notNull())
    .addColumn('ttl_seconds', 'integer')
    .addColumn('max_ttl_seconds', 'integer')
    .addColumn('latency_us', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('request'))
    .addColumn('grant_id', 'uuid')
    .execute();
  await db.schema.createIndex('decisions_workload_time').on('decisions').columns(['workload_id', 'created_at']).execute();
  await db.schema.createIndex('decisions_time').on('decisions').column('created_at').execute();

  // Active grants per workload, counted on every request as a broker-derived signal.
  await sql`create index grants_workload_active on grants (workload_id) where status = 'active'`.execute(db);

  // Requests per workload per minute, sharded so concurrent requests of one workload do not queue
  // on one row; the rate is a sum over a handful of rows instead of a count over every decision.
  await db.schema
    .createTable('request_buckets')
    .addColumn('workload_id', 'text', (c) => c.notNull())
    .addColumn('minute', 'timestamptz', (c) => c.notNull())
    .addColumn('shard', 'smallint', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('request_buckets_pk', ['workload_id', 'minute', 'shard'])
    .execute();

  // What a workload has used, one row per (task, param, value) per day: novelty is "no row in the
  // baseline window". `param` '' marks the task itself and '*' the whole parameter set (the target).
  await db.schema
    .createTable('usage_baseline')
    .addColumn('workload_id', 'text', (c) => c.notNull())
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('param', 'text', (c) => c.notNull())
    .addColumn('value_sha256', 'text', (c) => c.notNull())
    .addColumn('day', 'date', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_baseline_pk', ['workload_id', 'task', 'param', 'value_sha256', 'day'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['usage_baseline', 'request_buckets', 'decisions', 'signals']) await db.schema.dropTable(t).ifExists().execute();
  await db.schema.alterTable('config_versions').dropColumn('document').execute();
}
