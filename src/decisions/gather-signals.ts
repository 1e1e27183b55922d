import type { RegistrySnapshot } from '../config/registry.js';
import type { Database } from '../db/database.js';
import type { Principal } from '../identity/authenticate.js';
import type { PolicyValue, SignalTypeSpec } from '../policy/index.js';
import { latestSignals } from '../signals/signal.repository.js';

/** How one registered signal stood when the decision was made, as recorded in the decision. */
export interface SignalUse {
  type: string;
  subject: string | null;
  status: 'fresh' | 'stale' | 'expired' | 'missing';
  value?: unknown;
  source?: string;
  observed_at?: string;
  age_seconds?: number;
}

/** The subject a signal type is about, for this request; null when the identity does not name one. */
export function signalSubject(type: SignalTypeSpec, principal: Principal): string | null {
  switch (type.subject_kind) {
    case 'workload':
      return principal.workload.id;
    case 'issuer':
      return principal.issuer;
    case 'global':
      return '*';
    case 'host': {
      const v = principal.claims[type.subject_claim!];
      return typeof v === 'string' && v ? v : null;
    }
  }
}

/**
 * The fresh value of every registered signal type for this request. A signal older than its type's
 * maximum age, past its own expiry, or never sent is absent: policy never sees a default.
 */
export async function gatherSignals(
  db: Database,
  registry: RegistrySnapshot,
  principal: Principal,
  now: Date,
): Promise<{ values: Record<string, PolicyValue>; uses: SignalUse[] }> {
  const wanted = [...registry.signalTypes.values()].map((t) => ({ type: t, subject: signalSubject(t, principal) }));
  const keys = wanted.filter((w) => w.subject !== null).map((w) => ({ type: w.type.name, subject: w.subject! }));
  const found = new Map((await latestSignals(db, keys)).map((s) => [`${s.type}\u0000${s.subject}`, s]));
  const values: Record<string, PolicyValue> = {};
  const uses: SignalUse[] = wanted.map(({ type, subject }) => {
    const s = subject === null ? undefined : found.get(`${type.name}\u0000${subject}`);
    if (!s) return { type: type.name, subject, status: 'missing' };
    const age = Math.round((now.getTime() - s.observed_at.getTime()) / 1000);
    const base = { type: type.name, subject, value: s.value, source: s.source, observed_at: s.observed_at.toISOString(), age_seconds: age };
    if (s.expires_at && s.expires_at <= now) return { ...base, status: 'expired' };
    if (age > type.max_age_seconds) return { ...base, status: 'stale' };
    values[type.name] = s.value as PolicyValue;
    return { ...base, status: 'fresh' };
  });
  return { values, uses };
}
