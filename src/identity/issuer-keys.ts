import { createLocalJWKSet, type JWTVerifyGetKey, type JSONWebKeySet } from 'jose';
import type { Clock } from '../lib/clock.js';
import { RemoteJwks } from './remote-jwks.js';
import { canonicalJson } from '../lib/hash.js';
import type { IssuerSpec } from '../config/spec.js';

/** A JWKS fetch that hangs must not hold the request: give up after this long. */
const JWKS_FETCH_TIMEOUT_MS = 5_000;

/**
 * Key resolvers per issuer, kept across registry reloads while the issuer's spec is unchanged, so a
 * config apply does not throw away JWKS caches.
 */
export class IssuerKeys {
  readonly #sets = new Map<string, { fingerprint: string; getKey: JWTVerifyGetKey }>();

  /** `onJwksError` hears of each failed JWKS fetch, including those a stale cached set rides out. */
  constructor(
    private readonly clock: Clock,
    private readonly onJwksError: (issuerId: string, err: Error) => void = () => {},
  ) {}

  /**
   * Each spec's fingerprint, per spec object: a registry snapshot keeps its spec objects until the next
   * reload, so a request does not serialise its issuer's whole spec (JWKS included) again.
   */
  readonly #fingerprints = new WeakMap<IssuerSpec, string>();

  for(issuer: IssuerSpec): JWTVerifyGetKey {
    let fingerprint = this.#fingerprints.get(issuer);
    if (fingerprint === undefined) this.#fingerprints.set(issuer, (fingerprint = canonicalJson(issuer)));
    const cached = this.#sets.get(issuer.id);
    if (cached?.fingerprint === fingerprint) return cached.getKey;
    const getKey = issuer.jwks
      ? createLocalJWKSet(issuer.jwks as JSONWebKeySet)
      : new RemoteJwks({
          url: issuer.jwks_uri!,
          clock: this.clock,
          cooldownMs: issuer.jwks_cooldown_seconds * 1000,
          maxAgeMs: issuer.jwks_max_age_seconds * 1000,
          timeoutMs: JWKS_FETCH_TIMEOUT_MS,
          onError: (err) => this.onJwksError(issuer.id, err),
        }).getKey;
    this.#sets.set(issuer.id, { fingerprint, getKey });
    return getKey;
  }
}
