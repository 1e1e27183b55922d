import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import type { RegistrySnapshot } from '../config/registry.js';
import type { Database } from '../db/database.js';
import { authenticationFailed } from '../lib/errors.js';
import { safeEqual, sha256Hex } from '../lib/hash.js';
import { consumeAssertionJti } from '../identity/assertion.repository.js';
import type { SignalSourceSpec } from './source.spec.js';

const MAX_SIGNED_REQUEST_AGE_SECONDS = 300;
/** Sources run on ordinary hosts whose clocks drift a little. */
const SIGNED_REQUEST_LEEWAY_SECONDS = 30;

/** The signed request's `body_sha256`: lowercase hex SHA-256 of the exact body bytes it signs. */
const BODY_SHA256 = /^[0-9a-f]{64}$/;

/** Who sent a batch, and for a signed request the digest of the one body its signature covers. */
export interface AuthenticatedSource {
  source: SignalSourceSpec;
  /** Set for signed requests: the body must hash to this (checked once it is read, see signals.routes.ts). */
  bodySha256?: string;
}

/** One imported key set per source spec (a registry reload makes new specs): no importKey per request. */
const sourceKeySets = new WeakMap<SignalSourceSpec, ReturnType<typeof createLocalJWKSet>>();

function sourceKeys(source: SignalSourceSpec): ReturnType<typeof createLocalJWKSet> {
  let set = sourceKeySets.get(source);
  if (!set) {
    set = createLocalJWKSet({ keys: source.public_keys } as JSONWebKeySet);
    sourceKeySets.set(source, set);
  }
  return set;
}

/**
 * The signal source behind a bearer credential: a signed JWT (iss = sub = source id, audience the
 * signals endpoint, single-use jti, `body_sha256` of the batch it carries, so an intercepted unused
 * token cannot carry another batch) or an API key compared by SHA-256 in constant time.
 */
export async function authenticateSignalSource(
  credential: string,
  ctx: { registry: RegistrySnapshot; db: Database; now: Date; audience: string },
): Promise<AuthenticatedSource> {
  if (credential.split('.').length === 3) {
    let iss: unknown;
    try {
      iss = decodeJwt(credential).iss;
    } catch (err) {
      throw authenticationFailed('signal source: malformed JWT', err);
    }
    const source = typeof iss === 'string' ? ctx.registry.signalSources.get(iss) : undefined;
    if (!source?.public_keys.length) throw authenticationFailed(`signal source: unknown or keyless source ${String(iss)}`);
    let jti: string;
    let exp: number;
    let bodySha256: string;
    try {
      const { payload } = await jwtVerify(credential, sourceKeys(source), {
        issuer: source.id,
        subject: source.id,
        audience: ctx.audience,
        maxTokenAge: MAX_SIGNED_REQUEST_AGE_SECONDS,
        clockTolerance: SIGNED_REQUEST_LEEWAY_SECONDS,
        currentDate: ctx.now,
        requiredClaims: ['jti', 'exp', 'iat'],
      });
      jti = String(payload.jti);
      exp = payload.exp!;
      if (typeof payload.body_sha256 !== 'string' || !BODY_SHA256.test(payload.body_sha256)) throw new Error('body_sha256 (hex SHA-256 of the body) is missing or malformed');
      bodySha256 = payload.body_sha256;
      // A longer life would pin its replay row (or overflow the timestamp column) for as long as asked.
      if (exp - payload.iat! > MAX_SIGNED_REQUEST_AGE_SECONDS) throw new Error(`lifetime exp - iat = ${exp - payload.iat!}s exceeds ${MAX_SIGNED_REQUEST_AGE_SECONDS}s`);
    } catch (err) {
      throw authenticationFailed(`signal source ${source.id}: ${(err as Error).message}`, err);
    }
    // Remembered for as long as jose would still accept it: exp widened by the leeway.
    if (!(await consumeAssertionJti(ctx.db, `source:${source.id}`, jti, new Date((exp + SIGNED_REQUEST_LEEWAY_SECONDS) * 1000)))) {
      throw authenticationFailed(`signal source ${source.id}: jti replayed`);
    }
    return { source, bodySha256 };
  }
  const hash = sha256Hex(credential);
  let found: SignalSourceSpec | undefined;
  // Compare against every source so the time taken does not tell which source (or none) matched.
  for (const source of ctx.registry.signalSources.values()) {
    if (source.api_key_sha256 && safeEqual(source.api_key_sha256, hash)) found = source;
  }
  if (!found) throw authenticationFailed('signal source: unknown API key');
  return { source: found };
}
