import type { Database } from '../db/database.js';
import type { Kek } from './kek.js';
import { generateSigningKey } from './keystore.js';
import { extendRetiredKeys, insertKey, lastExpiryOfKey, listKeysForUpdate, setKeyStatus, withKeyLock, type KeyChange } from './key.repository.js';

/** How long a key signs before the next one takes over. */
export const KEY_ROTATION_INTERVAL_SECONDS = 24 * 3600;
/**
 * How long the next key sits in JWKS before it signs: longer than any sane verifier JWKS cache (jose's
 * default 10 min, our JWKS Cache-Control 5 min) plus replica key reloads (30 s), so every verifier has
 * it before the first token it signs arrives.
 */
export const NEXT_KEY_LEAD_SECONDS = 3600;
/**
 * How long a retired key outlives the last token it signed in JWKS: clock skew plus Status List
 * Tokens (valid 5 min) and the replica reload window.
 */
export const RETIRED_KEY_GRACE_SECONDS = 600;

export interface RotationTiming {
  intervalSeconds: number;
  leadSeconds: number;
  graceSeconds: number;
}

export const DEFAULT_ROTATION: RotationTiming = {
  intervalSeconds: KEY_ROTATION_INTERVAL_SECONDS,
  leadSeconds: NEXT_KEY_LEAD_SECONDS,
  graceSeconds: RETIRED_KEY_GRACE_SECONDS,
};

export type RotationStep = 'next_created' | 'rotated' | 'none';

/** Rotation is the scheduler's routine, not anyone's decision. */
const ROTATION: KeyChange = { actor: 'system:rotation', reason: 'scheduled rotation' };

/**
 * One rotation step, under the key lock (one replica at a time): publish a next key if there is none;
 * when the current key is due and the next one has been published long enough, retire the current key
 * (kept in JWKS until its last token expires), promote the next, and publish a new next.
 */
export async function rotateKeys(db: Database, kek: Kek, now: Date, t: RotationTiming = DEFAULT_ROTATION): Promise<RotationStep> {
  return withKeyLock(db, async (trx) => {
    await extendRetiredKeys(trx, t.graceSeconds);
    const keys = await listKeysForUpdate(trx);
    const current = keys.find((k) => k.status === 'current');
    const next = keys.find((k) => k.status === 'next');
    if (!next) {
      await insertKey(trx, { ...(await generateSigningKey(kek)), status: 'next' }, ROTATION, now);
      return 'next_created';
    }
    const ms = (s: number) => s * 1000;
    const due = !current || (current.activated_at ?? current.created_at).getTime() + ms(t.intervalSeconds) <= now.getTime();
    const published = next.created_at.getTime() + ms(t.leadSeconds) <= now.getTime();
    if (!due || !published) return 'none';
    if (current) await setKeyStatus(trx, current.kid, { status: 'retired', publishUntil: await publishUntil(trx, current.kid, now, t) }, ROTATION, now);
    await setKeyStatus(trx, next.kid, { status: 'current' }, ROTATION, now);
    await insertKey(trx, { ...(await generateSigningKey(kek)), status: 'next' }, ROTATION, now);
    return 'rotated';
  });
}

async function publishUntil(trx: Database, kid: string, now: Date, t: RotationTiming): Promise<Date> {
  const last = Math.max(now.getTime(), (await lastExpiryOfKey(trx, kid))?.getTime() ?? 0);
  return new Date(last + t.graceSeconds * 1000);
}

/**
 * Emergency revocation: the key leaves JWKS now. If it was signing, the next key (or a fresh one when
 * there is none) signs from now on, without waiting for its lead time: a compromised key is worse than
 * verifiers refetching JWKS on an unknown kid. Returns whether the key changed state.
 */
export async function revokeKey(db: Database, kek: Kek, kid: string, by: KeyChange, now: Date): Promise<{ changed: boolean; found: boolean }> {
  return withKeyLock(db, async (trx) => {
    const keys = await listKeysForUpdate(trx);
    const key = keys.find((k) => k.kid === kid);
    if (!key) {
      const revoked = await trx.selectFrom('signing_keys').select('kid').where('kid', '=', kid).executeTakeFirst();
      return { changed: false, found: !!revoked };
    }
    await setKeyStatus(trx, kid, { status: 'revoked' }, by, now);
    if (key.status === 'current') {
      const replaces = { actor: by.actor, reason: `replaces revoked key ${kid}` };
      const next = keys.find((k) => k.status === 'next');
      if (next) await setKeyStatus(trx, next.kid, { status: 'current' }, replaces, now);
      else await insertKey(trx, { ...(await generateSigningKey(kek)), status: 'current' }, replaces, now);
    }
    return { changed: true, found: true };
  });
}
