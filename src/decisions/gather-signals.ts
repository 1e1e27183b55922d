import type { RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import { signalValueProblem, type PolicyValue } from '../policy/index.js';
import type { SignalReader } from '../signals/signal.repository.js';
import { signalSubject } from '../signals/subject.js';

/** How one registered signal stood when the decision was made, as recorded in the decision. */
export interface SignalUse {
  type: string;
  subject: string | null;
  /** `invalid`: the stored value does not fit the type as registered now (it changed since). */
  status: 'fresh' | 'stale' | 'expired' | 'invalid' | 'missing';
  value?: unknown;
  source?: string;
  observed_at?: string;
  age_seconds?: number;
  /** Why an `invalid` value does not fit. */
  problem?: string;
}

/**
 * The fresh value of every registered signal type for this request. A signal older than its type's
 * maximum age, past its own expiry, never sent, or whose stored value no longer fits its type is
 * absent: policy never sees a default, and one bad value costs only that signal, not the decision.
 */
export async function gatherSignals(
  signals: Pick<SignalReader, 'latest'>,
  registry: RegistrySnapshot,
  principal: Principal,
  now: Date,
): Promise<{ values: Record<string, PolicyValue>; uses: SignalUse[] }> {
  const wanted = [...registry.signalTypes.values()].map((t) => ({ type: t, subject: signalSubject(t, principal) }));
  const keys = wanted.filter((w) => w.subject !== null).map((w) => ({ type: w.type.name, subject: w.subject! }));
  const found = new Map((await signals.latest(keys)).map((s) => [`${s.type}\u0000${s.subject}`, s]));
  const values: Record<string, PolicyValue> = {};
  const uses: SignalUse[] = wanted.map(({ type, subject }) => {
    const s = subject === null ? undefined : found.get(`${type.name}\u0000${subject}`);
    if (!s) return { type: type.name, subject, status: 'missing' };
    const age = Math.round((now.getTime() - s.observed_at.getTime()) / 1000);
    const base = { type: type.name, subject, value: s.value, source: s.source, observed_at: s.observed_at.toISOString(), age_seconds: age };
    if (s.expires_at && s.expires_at <= now) return { ...base, status: 'expired' };
    if (age > type.max_age_seconds) return { ...base, status: 'stale' };
    const problem = signalValueProblem(type, s.value);
    if (problem) return { ...base, status: 'invalid', problem };
    values[type.name] = s.value as PolicyValue;
    return { ...base, status: 'fresh' };
  });
  return { values, uses };
}
