import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { Decision } from './decider.js';
import type { DecisionTables } from './decision.table.js';
import { requestBucket } from './history.js';
import { recordAudit } from '../audit/audit-outbox.js';

export type DecisionRow = Selectable<DecisionTables['decisions']>;

export interface DecisionContext {
  workloadId: string;
  task: string;
  requestId: string | null;
  /** The request as the workload made it (task, params, purpose): never a token. */
  request: Record<string, unknown>;
  ttlSeconds: number | null;
  grantId: string | null;
  now: Date;
  /** A re-evaluation is not a request: it does not count towards the workload's request rate. */
  kind?: 'request' | 'reevaluation';
}

/**
 * Records a decision, counts the request towards the workload's rate, and stages its audit event.
 * Call it inside a transaction (the mint transaction for an allow): no token leaves without its
 * decision and audit event committed.
 */
export async function recordDecision(db: Database, d: Decision, c: DecisionContext): Promise<void> {
  const kind = c.kind ?? 'request';
  const row = {
    id: d.id,
    created_at: c.now,
    request_id: c.requestId,
    workload_id: c.workloadId,
    task: c.task,
    outcome: d.outcome,
    reasons: d.reasons,
    errors: d.errors,
    determining: d.determining,
    policy_version: d.policyVersion,
    config_version: d.configVersion,
    request: JSON.stringify(c.request),
    signals: JSON.stringify(d.signals),
    ttl_seconds: c.ttlSeconds,
    max_ttl_seconds: d.maxTtlSeconds ?? null,
    latency_us: d.latencyUs,
    grant_id: c.grantId,
    kind,
  };
  if (kind === 'request') {
    await db
      .with('d', (q) => q.insertInto('decisions').values(row))
      .insertInto('request_buckets')
    .values(requestBucket(c.workloadId, c.now))
      .onConflict((oc) => oc.columns(['workload_id', 'minute', 'shard']).doUpdateSet({ n: sql`request_buckets.n + 1` }))
      .execute();
  } else {
    await db.insertInto('decisions').values(row).execute();
  }
  await recordAudit(
    db,
    {
      actor: `workload:${c.workloadId}`,
      action: 'decision.recorded',
      outcome: d.outcome,
      target_type: 'decision',
      target_id: d.id,
      request_id: c.requestId,
      data: { task: c.task, kind, reasons: d.reasons, policy_version: d.policyVersion, determining: d.determining, grant_id: c.grantId },
    },
    c.now,
  );
}

export async function findDecision(db: Database, id: string): Promise<DecisionRow | undefined> {
  return db.selectFrom('decisions').selectAll().where('id', '=', id).executeTakeFirst();
}
