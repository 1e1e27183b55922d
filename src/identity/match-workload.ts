import type { JWTPayload } from 'jose';
import type { RegistrySnapshot } from '../config/registry.js';
import type { WorkloadRow } from '../config/registry.repository.js';
import { authenticationFailed } from '../lib/errors.js';

/**
 * The one active workload whose binding to `issuerId` matches the verified claims. No match, more than
 * one match (an ambiguous configuration), or a suspended/retired workload all fail authentication.
 */
export function matchWorkload(registry: RegistrySnapshot, issuerId: string, claims: JWTPayload): WorkloadRow {
  const matches = new Map<string, WorkloadRow>();
  for (const b of registry.bindingsByIssuer.get(issuerId) ?? []) {
    if (b.subject !== undefined && b.subject !== claims.sub) continue;
    if (b.claims.every(([name, test]) => test(claims[name]))) matches.set(b.workload.id, b.workload);
  }
  if (matches.size === 0) throw authenticationFailed(`issuer ${issuerId}: no workload binding matches sub=${String(claims.sub)}`);
  if (matches.size > 1) {
    throw authenticationFailed(`issuer ${issuerId}: bindings of several workloads match (${[...matches.keys()].join(', ')}); refusing`);
  }
  const workload = [...matches.values()][0]!;
  if (workload.status !== 'active') throw authenticationFailed(`workload ${workload.id} is ${workload.status}`);
  return workload;
}
