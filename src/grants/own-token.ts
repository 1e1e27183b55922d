import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { KeyStore } from '../keys/keystore.js';
import type { Clock } from '../lib/clock.js';
import { authenticationFailed } from '../lib/errors.js';

/** Verifies an access token this broker issued (signature, typ, issuer, expiry) against its own keys. */
export async function verifyOwnAccessToken(deps: { keys: KeyStore; clock: Clock; issuer: string }, token: string): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(deps.keys.jwks() as JSONWebKeySet), {
      issuer: deps.issuer,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      currentDate: deps.clock.now(),
      requiredClaims: ['jti', 'sub', 'exp'],
    });
    return payload;
  } catch (err) {
    throw authenticationFailed(`own access token: ${(err as Error).message}`, err);
  }
}
