import type { Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { Decision } from './decider.js';
import type { DecisionTables } from './decision.table.js';
import { recordAudit } from '../audit/audit-outbox.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import { decisionDigest } from '../audit/row-digest.js';

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
  /** A re-evaluation is recorded as such, and is not a request of the workload. */
  kind?: 'request' | 'reevaluation';
}

/**
 * Records a decision and stages its audit event (the request rate is counted by the RequestCounter).
 * Call it inside a transaction (the mint transaction for an allow): no token leaves without its
 * decision and audit event committed.
 */
/** The decisions row of a decision (JSON columns as objects). */
export function decisionRow(d: Decision, c: DecisionContext) {
  return {
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
    request: c.request,
    signals: d.signals,
    ttl_seconds: c.ttlSeconds,
    max_ttl_seconds: d.maxTtlSeconds ?? null,
    latency_us: d.latencyUs,
    grant_id: c.grantId,
    kind: c.kind ?? 'request',
  };
}

/** The audit event that records a decision. */
export function decisionAuditEvent(d: Decision, c: DecisionContext): AuditEventInput {
  return {
    actor: `workload:${c.workloadId}`,
    action: 'decision.recorded',
    outcome: d.outcome,
    target_type: 'decision',
    target_id: d.id,
    request_id: c.requestId,
    data: {
      task: c.task,
      kind: c.kind ?? 'request',
      reasons: d.reasons,
      policy_version: d.policyVersion,
      config_version: d.configVersion,
      determining: d.determining,
      grant_id: c.grantId,
      // The whole row (request, signals, versions) is chained by its hash: an edit of it shows in verify and the trail.
      row_sha256: decisionDigest(decisionRow(d, c)),
    },
  };
}

export async function recordDecision(db: Database, d: Decision, c: DecisionContext): Promise<void> {
  const row = decisionRow(d, c);
  await db.insertInto('decisions').values({ ...row, request: JSON.stringify(row.request), signals: JSON.stringify(row.signals) }).execute();
  await recordAudit(db, decisionAuditEvent(d, c), c.now);
}

/** Who applied the configuration version a decision ran under, and when. */
export interface DecisionConfig {
  config_applied_by: string | null;
  config_applied_at: Date | null;
  config_policy_version: string | null;
}

/** One decision, with the configuration version it ran under (who applied it, when, its policy version). */
export async function findDecision(db: Database, id: string): Promise<(DecisionRow & DecisionConfig) | undefined> {
  return db
    .selectFrom('decisions')
    .leftJoin('config_versions as cv', 'cv.id', 'decisions.config_version')
    .selectAll('decisions')
    .select(['cv.applied_by as config_applied_by', 'cv.applied_at as config_applied_at', 'cv.policy_version as config_policy_version'])
    .where('decisions.id', '=', id)
    .executeTakeFirst();
}
