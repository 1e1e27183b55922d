import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Kek } from './kek.js';
import { insertKey, listPublishedKeys, withKeyLock, type KeyChange, type StoredKey } from './key.repository.js';
import { signEs256Async } from './jws.js';
import { revokeKey, rotateKeys, type RotationStep, type RotationTiming } from './rotation.js';

/** The public members of an EC JWK, as published in JWKS. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y'] as const;

export interface Jwks {
  keys: Array<Record<string, unknown>>;
}

/** A freshly generated ES256 key: its kid is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(kek: Kek): Promise<{ kid: string; public_jwk: Record<string, unknown>; private_key_enc: string }> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const publicJwk = Object.fromEntries(PUBLIC_MEMBERS.map((m) => [m, jwk[m]]));
  const kid = await calculateJwkThumbprint(publicJwk as JWK);
  return {
    kid,
    public_jwk: { ...publicJwk, kid, use: 'sig', alg: 'ES256' },
    private_key_enc: kek.seal(JSON.stringify(jwk), kid),
  };
}

/**
 * The broker's signing keys, held in memory between refreshes: the current private key is decrypted
 * and imported once, and JWKS is served from memory, so nothing on the request path reads the keys table.
 */
export class KeyStore {
  #signing: { kid: string; key: KeyObject } | undefined;
  #jwks: Jwks = { keys: [] };

  constructor(
    private readonly db: Database,
    private readonly kek: Kek,
    private readonly clock: Clock,
  ) {}

  /** Creates a current key if there is none (exactly one replica does), then loads the keys. */
  async init(): Promise<void> {
    await withKeyLock(this.db, async (trx) => {
      const keys = await listPublishedKeys(trx, this.clock.now());
      if (!keys.some((k) => k.status === 'current')) {
        await insertKey(trx, { ...(await generateSigningKey(this.kek)), status: 'current' }, { actor: 'system:startup', reason: 'no current signing key' }, this.clock.now());
      }
    });
    await this.refresh();
  }

  /** One rotation step (see rotateKeys); reloads this replica's keys when something changed. */
  async rotate(now: Date, timing?: RotationTiming): Promise<RotationStep> {
    const step = await rotateKeys(this.db, this.kek, now, timing);
    if (step !== 'none') await this.refresh();
    return step;
  }

  /** Emergency revocation of one key (see revokeKey); this replica stops using it at once. */
  async revoke(kid: string, by: KeyChange, now: Date): Promise<{ changed: boolean; found: boolean }> {
    const result = await revokeKey(this.db, this.kek, kid, by, now);
    await this.refresh();
    return result;
  }

  /** The reload running or last run: reloads run one after another (see refresh). */
  #reloading: Promise<void> = Promise.resolve();
  /** A reload waiting for the one running, not yet begun: callers until it begins share it. */
  #queued: Promise<void> | undefined;

  /**
   * Reloads keys from Postgres (after a rotation, on any replica). Reloads run one at a time, in call
   * order: run side by side, the periodic reload could read the keys before a revocation committed and
   * be applied after the revocation's own reload, putting the revoked key back as the signing key
   * (found in review; every mint then failed key_revoked twice, a 503, until the next reload). Callers
   * that arrive while a reload waits its turn share it: it reads the keys after each of them called,
   * and a burst of mints refused with key_revoked costs one reload, not one after another.
   */
  refresh(): Promise<void> {
    if (this.#queued) return this.#queued;
    const run = this.#reloading.catch(() => undefined).then(async () => {
      this.#queued = undefined;
      this.load(await listPublishedKeys(this.db, this.clock.now()));
    });
    this.#queued = run;
    this.#reloading = run;
    return run;
  }

  private load(keys: StoredKey[]): void {
    const current = keys.find((k) => k.status === 'current');
    if (!current) throw new Error('no current signing key');
    if (this.#signing?.kid !== current.kid) {
      const jwk = JSON.parse(this.kek.open(current.private_key_enc, current.kid)) as JWK;
      this.#signing = { kid: current.kid, key: createPrivateKey({ key: jwk as never, format: 'jwk' }) };
    }
    this.#jwks = { keys: keys.map((k) => k.public_jwk) };
  }

  /** The kid that signs now. */
  get currentKid(): string {
    if (!this.#signing) throw new Error('KeyStore.init() has not run');
    return this.#signing.kid;
  }

  /** Signs a JWT with the current key (off the request thread, see signEs256Async); `typ` names the token kind (at+jwt, statuslist+jwt, secevent+jwt). */
  async sign(typ: string, payload: Record<string, unknown>): Promise<{ token: string; kid: string }> {
    if (!this.#signing) throw new Error('KeyStore.init() has not run');
    const { kid, key } = this.#signing;
    return { token: await signEs256Async({ typ, kid }, payload, key), kid };
  }

  /** The public JWKS (public members only). */
  jwks(): Jwks {
    return this.#jwks;
  }
}
