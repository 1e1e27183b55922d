import type { Database } from '../db/database.js';
import { notFound } from '../lib/errors.js';
import { revokeGrants } from '../grants/revocation.service.js';
import { publishStatusList } from '../grants/status-list.service.js';
import type { KeyStore } from './keystore.js';
import type { Clock } from '../lib/clock.js';

/**
 * Emergency key revocation: the key leaves JWKS at once (verifiers reject its tokens when they next
 * refetch), every active grant it signed is revoked (introspection and events say so at once), and the
 * status list is republished with a key that is still trusted. Other replicas may still sign with it
 * until they reload keys (within 30 s), but the mint insert refuses a revoked kid (they reload and sign
 * again), and the expiry sweep revokes any grant of a revoked key that committed in between. The key's
 * state change is audited with the actor and reason.
 */
export async function revokeSigningKey(
  deps: { db: Database; keys: KeyStore; issuer: string; clock: Clock },
  kid: string,
  r: { actor: string; reason: string },
  now: Date,
): Promise<{ kid: string; changed: boolean; grants_revoked: number; current_kid: string }> {
  const { changed, found } = await deps.keys.revoke(kid, r, now);
  if (!found) throw notFound('Signing key');
  const revoked = await revokeGrants(deps.db, { kid }, { actor: r.actor, reason: `signing key revoked: ${r.reason}` }, now);
  // At the time of publishing, so no list a scheduled run signed meanwhile counts as newer than this one.
  await publishStatusList(deps, deps.clock.now());
  return { kid, changed, grants_revoked: revoked.length, current_kid: deps.keys.currentKid };
}
