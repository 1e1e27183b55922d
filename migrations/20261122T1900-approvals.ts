import { sql, type Kysely } from 'kysely';

// Frozen: step-up approvals, their votes, and signed notification webhooks, as of 2026-11-22.
// Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // One approval request is bound to exactly one action: workload + task + canonical params hash.
  await db.schema
    .createTable('approvals')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('workload_id', 'text', (c) => c.notNull())
    // The workload's owner when it asked: who may not approve its own request (forbid_owner).
    .addColumn('workload_owner', 'text', (c) => c.notNull())
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('params_sha256', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text')
    // The step_up decision (request, signals, reasons); no foreign key so decisions can be partitioned.
    .addColumn('decision_id', 'uuid', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'approved', 'denied', 'expired', 'redeemed')`))
    .addColumn('required_approvals', 'integer', (c) => c.notNull().check(sql`required_approvals >= 1`))
    .addColumn('forbid_owner', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('decided_at', 'timestamptz')
    .addColumn('redeemed_at', 'timestamptz')
    .addColumn('grant_id', 'uuid', (c) => c.unique().references('grants.id'))
    .execute();
  await db.schema.createIndex('approvals_workload_time').on('approvals').columns(['workload_id', 'created_at']).execute();
  await db.schema.createIndex('approvals_time').on('approvals').columns(['created_at', 'id']).execute();
  // The expiry sweep reads only what can still expire.
  await sql`create index approvals_open_expiry on approvals (expires_at) where status in ('pending', 'approved')`.execute(db);

  await db.schema
    .createTable('approval_votes')
    .addColumn('approval_id', 'uuid', (c) => c.notNull().references('approvals.id'))
    // `admin:<key name>`, `policy:<id>` or `webhook:<host>`.
    .addColumn('approver', 'text', (c) => c.notNull())
    .addColumn('vote', 'text', (c) => c.notNull().check(sql`vote in ('approve', 'deny')`))
    .addColumn('comment', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('approval_votes_pkey', ['approval_id', 'approver'])
    .execute();

  // Receivers of approval notifications; their HMAC secret is sealed with the KEK (the broker must sign).
  await db.schema
    .createTable('approval_webhooks')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('disabled_at', 'timestamptz')
    .execute();

  // The notification outbox: staged in the transaction of the state change it reports.
  await db.schema
    .createTable('approval_webhook_deliveries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('webhook_id', 'uuid', (c) => c.notNull().references('approval_webhooks.id'))
    .addColumn('approval_id', 'uuid', (c) => c.notNull().references('approvals.id'))
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('delivered_at', 'timestamptz')
    .addUniqueConstraint('approval_webhook_deliveries_once', ['approval_id', 'event', 'webhook_id'])
    .execute();
  await sql`create index approval_webhook_deliveries_due on approval_webhook_deliveries (next_attempt_at) where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['approval_webhook_deliveries', 'approval_webhooks', 'approval_votes', 'approvals']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
