import type { RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import { signalValueProblem, type PolicyValue, type SignalTypeSpec } from '../policy/index.js';
import { asStored, type SignalKey, type StoredSignal } from '../signals/signal.repository.js';
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
  /** For a fresh use: when it stops being fresh (its type's maximum age, or its own expiry if sooner). */
  fresh_until?: string;
  /** Why an `invalid` value does not fit. */
  problem?: string;
}

/** The signals a request's decision reads: each registered type with its subject for this principal (null: none applies). */
export interface WantedSignals {
  wanted: Array<{ type: SignalTypeSpec; subject: string | null }>;
  /** The (type, subject) pairs to look up: those with a subject. */
  keys: SignalKey[];
}

export function wantedSignals(registry: RegistrySnapshot, principal: Principal): WantedSignals {
  const wanted = [...registry.signalTypes.values()].map((t) => ({ type: t, subject: signalSubject(t, principal) }));
  return { wanted, keys: wanted.filter((w) => w.subject !== null).map((w) => ({ type: w.type.name, subject: w.subject! })) };
}

/**
 * The fresh value of every wanted signal type, from the newest observations `found`. A signal older
 * than its type's maximum age, past its own expiry, never sent, or whose stored value no longer fits
 * its type is absent: policy never sees a default, and one bad value costs only that signal, not the
 * decision.
 */
export function gatherSignals(
  { wanted }: WantedSignals,
  found: StoredSignal[],
  now: Date,
): { values: Record<string, PolicyValue>; uses: SignalUse[] } {
  const byKey = new Map(found.map((s) => [`${s.type}\u0000${s.subject}`, s]));
  const values: Record<string, PolicyValue> = {};
  const uses: SignalUse[] = wanted.map(({ type, subject }) => {
    // Matched as looked up: a subject with a lone surrogate was asked, and is stored, with U+FFFD.
    const s = subject === null ? undefined : byKey.get(`${type.name}\u0000${asStored(subject)}`);
    if (!s) return { type: type.name, subject, status: 'missing' };
    const age = Math.round((now.getTime() - s.observed_at.getTime()) / 1000);
    const base = { type: type.name, subject, value: s.value, source: s.source, observed_at: s.observed_at.toISOString(), age_seconds: age };
    if (s.expires_at && s.expires_at <= now) return { ...base, status: 'expired' };
    if (age > type.max_age_seconds) return { ...base, status: 'stale' };
    const problem = signalValueProblem(type, s.value);
    if (problem) return { ...base, status: 'invalid', problem };
    values[type.name] = s.value as PolicyValue;
    const aged = s.observed_at.getTime() + type.max_age_seconds * 1000;
    const until = s.expires_at && s.expires_at.getTime() < aged ? s.expires_at.getTime() : aged;
    return { ...base, status: 'fresh', fresh_until: new Date(until).toISOString() };
  });
  return { values, uses };
}
