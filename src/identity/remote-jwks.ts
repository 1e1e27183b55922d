import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Clock } from '../lib/clock.js';

export interface RemoteJwksOptions {
  url: string;
  clock: Clock;
  /** Minimum time between two fetches caused by an unknown kid. */
  cooldownMs: number;
  /** How long a fetched JWKS is used before it is fetched again anyway. */
  maxAgeMs: number;
  timeoutMs: number;
  /** Called once per HTTP fetch (for metrics and tests). */
  onFetch?: () => void;
}

/**
 * A remote JWKS cache on the broker's clock. An unknown kid triggers at most one refetch per
 * cooldown, and concurrent callers share the one fetch in flight (a burst of tokens signed with a
 * freshly rotated key costs one request to the issuer, not one per token).
 */
export class RemoteJwks {
  #keys: { set: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;
  #inflight: Promise<void> | undefined;

  constructor(private readonly o: RemoteJwksOptions) {}

  /** A jose key resolver backed by this cache. */
  readonly getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = this.o.clock.now().getTime();
    if (!this.#keys || now - this.#keys.fetchedAt >= this.o.maxAgeMs) await this.refresh();
    try {
      return await this.#keys!.set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || now - this.#keys!.fetchedAt < this.o.cooldownMs) throw err;
      await this.refresh();
      return this.#keys!.set(header, token);
    }
  };

  private refresh(): Promise<void> {
    this.#inflight ??= this.fetchKeys().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  private async fetchKeys(): Promise<void> {
    this.o.onFetch?.();
    const res = await fetch(this.o.url, { signal: AbortSignal.timeout(this.o.timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
    if (!res.ok) throw new errors.JOSEError(`JWKS fetch from ${this.o.url} answered ${res.status}`);
    const jwks = (await res.json()) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new errors.JWKSInvalid(`JWKS from ${this.o.url} has no keys array`);
    this.#keys = { set: createLocalJWKSet(jwks), fetchedAt: this.o.clock.now().getTime() };
  }
}
