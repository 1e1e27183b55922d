import type { NewGrant } from '../grants/grant.repository.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';

/**
 * The decisions row as written at decision time, or as read back later: both must digest alike, so
 * every field is brought to one form (times as ISO strings, bigints as strings, JSON through a JSON
 * round trip, which is what jsonb gives back).
 */
export interface DecisionDigestInput {
  id: string;
  created_at: Date;
  request_id: string | null;
  workload_id: string;
  task: string;
  outcome: string;
  reasons: string[];
  errors: string[];
  determining: string[];
  policy_version: string | null;
  config_version: string | number | null;
  request: unknown;
  signals: unknown;
  ttl_seconds: number | null;
  max_ttl_seconds: number | null;
  latency_us: number;
  kind: string;
  grant_id: string | null;
}

/**
 * Whether canonicalJson writes `v` exactly as it writes v's JSON round trip: only JSON's own kinds
 * (undefined and non-finite numbers included, which both write alike), in arrays and plain objects.
 * A Date, a class instance, a function or anything deeper than 32 levels is not: it takes the round trip.
 */
function isPlainJson(v: unknown, depth = 0): boolean {
  if (v === null || v === undefined) return true;
  const t = typeof v;
  if (t === 'string' || t === 'number' || t === 'boolean') return true;
  if (t !== 'object' || depth > 32) return false;
  if (Array.isArray(v)) return v.every((x) => isPlainJson(x, depth + 1));
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in v as Record<string, unknown>) if (!isPlainJson((v as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}

/**
 * The value as jsonb gives it back, for digesting: a JSON round trip, skipped for a value it would not
 * change (the usual case: a mint's request and signals are parsed JSON; the round trip was a tenth of
 * a mint row's building).
 */
const json = (v: unknown): unknown => (isPlainJson(v) ? (v ?? null) : JSON.parse(JSON.stringify(v)));
const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

/** SHA-256 of a whole decisions row: its request, signals, policy and config versions, outcome and reasons. */
export function decisionDigest(d: DecisionDigestInput): string {
  return sha256Hex(
    canonicalJson({
      id: d.id,
      created_at: iso(d.created_at),
      request_id: d.request_id ?? null,
      workload_id: d.workload_id,
      task: d.task,
      outcome: d.outcome,
      reasons: d.reasons,
      errors: d.errors,
      determining: d.determining,
      policy_version: d.policy_version ?? null,
      config_version: d.config_version === null || d.config_version === undefined ? null : String(d.config_version),
      request: json(d.request),
      signals: json(d.signals),
      ttl_seconds: d.ttl_seconds ?? null,
      max_ttl_seconds: d.max_ttl_seconds ?? null,
      latency_us: d.latency_us,
      kind: d.kind,
      grant_id: d.grant_id ?? null,
    }),
  );
}

/**
 * SHA-256 of what a grants row fixes at mint: who, what task with which parameters, scopes, audience,
 * lifetime, lineage, key and token hash. Status, use count and how it ended change later; the chain
 * records those as events of their own.
 */
export function grantDigest(g: NewGrant): string {
  return sha256Hex(
    canonicalJson({
      id: g.id,
      workload_id: g.workload_id,
      task: g.task,
      params: json(g.params),
      scopes: g.scopes,
      audience: g.audience,
      purpose: g.purpose ?? null,
      issued_at: iso(g.issued_at),
      expires_at: iso(g.expires_at),
      decision_id: g.decision_id ?? null,
      approval_id: g.approval_id ?? null,
      parent_id: g.parent_id ?? null,
      max_uses: g.max_uses ?? null,
      cnf_jkt: g.cnf_jkt ?? null,
      kid: g.kid,
      token_sha256: g.token_sha256,
      identity: json(g.identity),
      status_idx: g.status_idx ?? null,
    }),
  );
}
