import { canonicalJson, sha256Hex } from '../lib/hash.js';

/** How an audited action ended; the listed values are the common ones, others are allowed. */
export type AuditOutcome = 'success' | 'failure' | 'deny' | 'allow' | 'step_up' | (string & {});

/**
 * What a caller records. Field names match the columns (and the hashed form), so a trail, an export
 * line and the hash input all read the same. `data` holds details: ids, hashes, reasons; never a token.
 */
export interface AuditEventInput {
  /** Who acted, as `kind:name`: `workload:deploy-bot`, `admin:alice`, `system:scheduler`. */
  actor: string;
  /** What happened, as `area.verb`: `grant.minted`, `grant.revoked`, `decision.recorded`, `auth.failed`. */
  action: string;
  outcome: AuditOutcome;
  target_type?: string | null;
  target_id?: string | null;
  request_id?: string | null;
  data?: Record<string, unknown>;
  /** When it happened, if earlier than the append (events staged in the outbox keep their own time). */
  at?: Date;
}

/** One stored event, as listed and exported. `seq` is a bigint, kept as a decimal string. */
export interface AuditEvent {
  seq: string;
  id: string;
  at: Date;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  request_id: string | null;
  outcome: string;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/**
 * The columns an event fills in its own right (staged or chained), nullable ones as null and `at`
 * defaulting to `now`; `data` is left to the caller, which brings it to its stored form.
 */
export function eventColumns(e: AuditEventInput, now: Date) {
  return {
    at: e.at ?? now,
    actor: e.actor,
    action: e.action,
    target_type: e.target_type ?? null,
    target_id: e.target_id ?? null,
    request_id: e.request_id ?? null,
    outcome: e.outcome,
  };
}

/** Where a chain appends, or where verification resumes: the last event's seq and hash. */
export interface AuditChainHead {
  seq: string;
  hash: string;
}

/** The prev_hash of the very first event, before anything was ever purged. */
export const GENESIS_HASH = '0'.repeat(64);

/** The action retention records; verification looks for it to confirm a moved anchor. */
export const AUDIT_PURGED_ACTION = 'audit.purged';

/**
 * The chain hash: sha256Hex(prev_hash + '\n' + canonicalJson({seq, id, at, actor, action, target_type,
 * target_id, request_id, outcome, data})), `at` as ISO-8601 UTC. Exported so an export can be checked
 * offline with nothing but this formula.
 */
export function computeAuditHash(prevHash: string, e: Omit<AuditEvent, 'prev_hash' | 'hash'>): string {
  const hashed = {
    seq: e.seq,
    id: e.id,
    at: e.at.toISOString(),
    actor: e.actor,
    action: e.action,
    target_type: e.target_type,
    target_id: e.target_id,
    request_id: e.request_id,
    outcome: e.outcome,
    data: e.data,
  };
  return sha256Hex(`${prevHash}\n${canonicalJson(hashed)}`);
}
