import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import type { RegistrySnapshot } from '../config/registry.js';
import type { Database } from '../db/database.js';
import { authenticationFailed } from '../lib/errors.js';
import { safeEqual, sha256Hex } from '../lib/hash.js';
import { consumeAssertionJti } from '../identity/assertion.repository.js';
import type { SignalSourceSpec } from './source.spec.js';

const MAX_SIGNED_REQUEST_AGE_SECONDS = 300;

/**
 * The signal source behind a bearer credential: a signed JWT (iss = sub = source id, audience the
 * signals endpoint, single-use jti) or an API key compared by SHA-256 in constant time.
 */
export async function authenticateSignalSource(
  credential: string,
  ctx: { registry: RegistrySnapshot; db: Database; now: Date; audience: string },
): Promise<SignalSourceSpec> {
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
    try {
      const { payload } = await jwtVerify(credential, createLocalJWKSet({ keys: source.public_keys } as JSONWebKeySet), {
        issuer: source.id,
        subject: source.id,
        audience: ctx.audience,
        maxTokenAge: MAX_SIGNED_REQUEST_AGE_SECONDS,
        clockTolerance: 30,
        currentDate: ctx.now,
        requiredClaims: ['jti', 'exp', 'iat'],
      });
      jti = String(payload.jti);
      exp = payload.exp!;
    } catch (err) {
      throw authenticationFailed(`signal source ${source.id}: ${(err as Error).message}`, err);
    }
    if (!(await consumeAssertionJti(ctx.db, `source:${source.id}`, jti, new Date(exp * 1000)))) {
      throw authenticationFailed(`signal source ${source.id}: jti replayed`);
    }
    return source;
  }
  const hash = sha256Hex(credential);
  let found: SignalSourceSpec | undefined;
  // Compare against every source so the time taken does not tell which source (or none) matched.
  for (const source of ctx.registry.signalSources.values()) {
    if (source.api_key_sha256 && safeEqual(source.api_key_sha256, hash)) found = source;
  }
  if (!found) throw authenticationFailed('signal source: unknown API key');
  return found;
}
