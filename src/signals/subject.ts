import type { RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { SignalTypeSpec } from '../policy/index.js';

/** The subject of every `global` signal: it is about no one in particular, so there is only one. */
export const GLOBAL_SUBJECT = '*';

/**
 * The subject a signal type is about, for this request; null when the identity does not name one.
 * Issuer signals are keyed by the issuer's registry id; a client-assertion principal's issuer is
 * `workload:<id>`, which no issuer id can be, so issuer signals never apply to it.
 */
export function signalSubject(type: SignalTypeSpec, principal: Principal): string | null {
  switch (type.subject_kind) {
    case 'workload':
      return principal.workload.id;
    case 'issuer':
      return principal.issuer;
    case 'global':
      return GLOBAL_SUBJECT;
    case 'host': {
      const v = principal.claims[type.subject_claim!];
      return typeof v === 'string' && v ? v : null;
    }
  }
}

/**
 * Why a pushed signal's subject is not one signalSubject() can ever produce, or undefined. Such a
 * signal would be stored and silently never read, so ingestion refuses it. A host is whatever the
 * identity claim says, so any non-empty name may be one.
 */
export function subjectProblem(type: SignalTypeSpec, subject: string, registry: RegistrySnapshot): string | undefined {
  switch (type.subject_kind) {
    case 'global':
      return subject === GLOBAL_SUBJECT ? undefined : `a global signal's subject must be "${GLOBAL_SUBJECT}"`;
    case 'workload':
      return registry.workloads.has(subject) ? undefined : `no workload "${subject}" is registered`;
    case 'issuer':
      return registry.issuers.has(subject) ? undefined : `no issuer "${subject}" is registered (an issuer signal names the issuer's id)`;
    case 'host':
      return subject ? undefined : 'a host signal names the host';
  }
}
