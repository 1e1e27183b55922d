import type { Database } from '../db/database.js';
import type { RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { SignalUse } from '../decisions/gather-signals.js';
import { findDecision } from '../decisions/decision.repository.js';
import type { GrantRow } from './grant.repository.js';

/** What a grant row keeps of the identity proof it was minted on (never the token, only its hash). */
interface ProvenIdentity {
  method?: Principal['method'];
  issuer?: string;
  subject?: string;
  token_sha256?: string;
}

/**
 * The principal a grant was minted for, rebuilt so the decider can be asked about it again (continuous
 * re-evaluation, delegation): the workload as the registry has it now, the proof made then, the
 * identity claims its decision recorded, and the claims that named the subjects of host signals. A
 * decision keeps only the identity claims policies may read, so a host signal's `subject_claim` (say
 * `runner_name`) is rebuilt from the subject it resolved to, which every SignalUse records; without it
 * a compromised runner would be decided as if there were no runner. Returns why not when the workload
 * is no longer active.
 */
export async function grantPrincipal(
  deps: { db: Database; registry: { snapshot: RegistrySnapshot } },
  grant: GrantRow,
  now: Date,
): Promise<{ principal: Principal } | { refused: string }> {
  const snap = deps.registry.snapshot;
  const workload = snap.workloads.get(grant.workload_id);
  if (!workload || workload.status !== 'active') return { refused: `workload is ${workload?.status ?? 'gone'}` };
  const decision = grant.decision_id ? await findDecision(deps.db, grant.decision_id) : undefined;
  const recorded = (decision?.signals ?? {}) as { identity?: { claims?: Record<string, unknown>; token_age_seconds?: number }; used?: SignalUse[] };
  const claims: Record<string, unknown> = { ...recorded.identity?.claims };
  for (const use of recorded.used ?? []) {
    const type = snap.signalTypes.get(use.type);
    if (type?.subject_kind === 'host' && type.subject_claim && use.subject !== null) claims[type.subject_claim] = use.subject;
  }
  const proven = grant.identity as ProvenIdentity;
  claims.sub = proven.subject;
  return {
    principal: {
      workload,
      method: proven.method ?? 'oidc',
      issuer: proven.issuer ?? '',
      subject: proven.subject ?? '',
      claims,
      tokenAgeSeconds: Number(recorded.identity?.token_age_seconds ?? 0) + Math.floor((now.getTime() - grant.issued_at.getTime()) / 1000),
      tokenSha256: proven.token_sha256 ?? '',
    },
  };
}
