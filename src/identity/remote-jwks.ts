import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Clock } from '../lib/clock.js';
import { canonicalJson } from '../lib/hash.js';

/**
 * How long past its max age a JWKS is still served when every refresh fails: long enough to ride out
 * an outage of the issuer's JWKS endpoint, short enough that a key the issuer withdrew meanwhile is
 * not trusted for long. Past this, tokens of that issuer are refused until a fetch succeeds.
 */
export const STALE_JWKS_GRACE_MS = 60 * 60 * 1000;

interface CachedSet {
  set: ReturnType<typeof createLocalJWKSet>;
  /** The fetched JWKS as canonical JSON: an unchanged refetch keeps the set (see #fetchKeys). */
  fingerprint: string;
  fetchedAt: number;
}

export interface RemoteJwksOptions {
  url: string;
  clock: Clock;
  /** Minimum time between two fetch attempts (successful or not) caused by an unknown kid or a stale set. */
  cooldownMs: number;
  /** How long a fetched JWKS is used before it is fetched again anyway. */
  maxAgeMs: number;
  timeoutMs: number;
  /** Called once per HTTP fetch attempt (for metrics and tests). */
  onFetch?: () => void;
  /** Called once per failed fetch attempt, whether or not a stale set keeps serving. */
  onError?: (err: Error) => void;
}

/**
 * A remote JWKS cache on the broker's clock. Fetch attempts are spaced by the cooldown whether they
 * succeed or fail, so an issuer that errors is not asked again on every request; concurrent callers
 * share the one fetch in flight (a burst of tokens signed with a freshly rotated key costs one request
 * to the issuer, not one per token). A failed refresh keeps the last good set for STALE_JWKS_GRACE_MS.
 */
export class RemoteJwks {
  #keys: CachedSet | undefined;
  #attemptedAt: number | undefined;
  #inflight: Promise<void> | undefined;

  constructor(private readonly o: RemoteJwksOptions) {}

  /** A jose key resolver backed by this cache. */
  readonly getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = this.o.clock.now().getTime();
    if (!this.#keys || now - this.#keys.fetchedAt >= this.o.maxAgeMs) {
      // A failed refresh was reported through onError; #usable decides whether the cached set still serves.
      await this.#fetchIfAllowed(now)?.catch(() => {});
    }
    const keys = this.#usable(now);
    try {
      return await keys.set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A fetch finished while this lookup ran: its keys were never tried.
      if (this.#keys !== keys) return this.#keys!.set(header, token);
      const fetching = this.#fetchIfAllowed(now);
      if (!fetching) throw err;
      await fetching;
      return this.#keys!.set(header, token);
    }
  };

  /** The fetch in flight, or a new one when the cooldown since the last attempt has passed. */
  #fetchIfAllowed(now: number): Promise<void> | undefined {
    if (this.#inflight) return this.#inflight;
    const allowed = this.#attemptedAt === undefined || now - this.#attemptedAt >= this.o.cooldownMs;
    return allowed ? this.#refresh() : undefined;
  }

  #usable(now: number): CachedSet {
    if (!this.#keys) throw new errors.JOSEError(`no JWKS from ${this.o.url}: the last fetch failed (next attempt after the cooldown)`);
    if (now - this.#keys.fetchedAt >= this.o.maxAgeMs + STALE_JWKS_GRACE_MS) {
      throw new errors.JOSEError(`JWKS from ${this.o.url} is stale beyond its grace period and could not be refreshed`);
    }
    return this.#keys;
  }

  #refresh(): Promise<void> {
    this.#inflight = this.#fetchKeys()
      .catch((err: Error) => {
        this.o.onError?.(err);
        throw err;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #fetchKeys(): Promise<void> {
    this.#attemptedAt = this.o.clock.now().getTime();
    this.o.onFetch?.();
    const res = await fetch(this.o.url, { signal: AbortSignal.timeout(this.o.timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
    if (!res.ok) throw new errors.JOSEError(`JWKS fetch from ${this.o.url} answered ${res.status}`);
    const jwks = (await res.json()) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new errors.JWKSInvalid(`JWKS from ${this.o.url} has no keys array`);
    // An unchanged set keeps its imported keys, and with them the signature checks remembered under
    // them (verifyJwt's reuse): otherwise every refetch, each max age, would check every token again.
    const fingerprint = canonicalJson(jwks);
    const set = this.#keys?.fingerprint === fingerprint ? this.#keys.set : createLocalJWKSet(jwks);
    this.#keys = { set, fingerprint, fetchedAt: this.o.clock.now().getTime() };
  }
}
