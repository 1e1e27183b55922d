import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { Decision } from './decider.js';
import type { DecisionTables } from './decision.table.js';
import { requestBucket } from './history.js';

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
}

/**
 * Records a decision and counts the request towards the workload's rate, in one statement. Called
 * inside the mint transaction for an allow, so no token leaves without its decision on record.
 */
export async function recordDecision(db: Database, d: Decision, c: DecisionContext): Promise<void> {
  await db
    .with('d', (q) =>
      q.insertInto('decisions').values({
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
      }),
    )
    .insertInto('request_buckets')
    .values(requestBucket(c.workloadId, c.now))
    .onConflict((oc) => oc.columns(['workload_id', 'minute', 'shard']).doUpdateSet({ n: sql`request_buckets.n + 1` }))
    .execute();
}

export async function findDecision(db: Database, id: string): Promise<DecisionRow | undefined> {
  return db.selectFrom('decisions').selectAll().where('id', '=', id).executeTakeFirst();
}
