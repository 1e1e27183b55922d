import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { authenticationFailed } from '../lib/errors.js';
import { sha256Hex } from '../lib/hash.js';
import type { RegistrySnapshot } from '../config/registry.js';
import type { WorkloadRow } from '../config/registry.repository.js';
import type { IssuerSpec } from '../config/spec.js';
import type { IssuerKeys } from './issuer-keys.js';
import { matchWorkload } from './match-workload.js';
import { consumeAssertionJti } from './assertion.repository.js';
import { verifyJwt } from './verify-jwt.js';

/** RFC 7523 assertions are minted for one call; older than this they are refused. */
const MAX_ASSERTION_AGE_SECONDS = 300;
/** Workloads without a CI issuer run on ordinary hosts whose clocks drift a little. */
const ASSERTION_LEEWAY_SECONDS = 30;
const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];
/** The RFC 7523 claims an assertion proves (the rest is whatever the workload chose to write). */
const ASSERTION_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti']);
/** Identity tokens are a few KB; anything far larger is not one. */
const MAX_TOKEN_LENGTH = 16_384;
/** Headers that would make a verifier fetch or trust a key named by the token itself. */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'];

/**
 * Key resolvers for workloads' registered public keys, one per workload row. A registry reload makes new
 * rows, so a changed key set is never served stale; building a set per request would import (WebCrypto
 * importKey) the workload's keys on every assertion, which the mint profile showed on the hot path.
 */
const workloadKeySets = new WeakMap<WorkloadRow, ReturnType<typeof createLocalJWKSet>>();

function workloadKeys(workload: WorkloadRow): ReturnType<typeof createLocalJWKSet> {
  let set = workloadKeySets.get(workload);
  if (!set) {
    set = createLocalJWKSet({ keys: workload.spec.public_keys } as JSONWebKeySet);
    workloadKeySets.set(workload, set);
  }
  return set;
}

/** Who a request comes from, once its identity token has been verified. */
export interface Principal {
  workload: WorkloadRow;
  method: 'oidc' | 'spiffe' | 'client_assertion';
  issuer: string;
  subject: string;
  /** The verified claims (identity tokens carry no secrets; the token itself is never kept). */
  claims: JWTPayload;
  tokenAgeSeconds: number;
  tokenSha256: string;
}

export interface AuthenticationContext {
  db: Database;
  clock: Clock;
  registry: RegistrySnapshot;
  issuerKeys: IssuerKeys;
  /** The broker's own issuer URL: its tokens are never identity, and assertions name it as audience. */
  brokerIssuer: string;
  /** Audiences a client assertion may name: the broker's issuer and its token endpoint. */
  assertionAudiences: string[];
}

/**
 * Verifies an identity JWT (CI OIDC token, SPIFFE JWT-SVID, or RFC 7523 client assertion) and maps it
 * to exactly one active workload. Every failure is the same generic 401; the log gets the reason.
 */
export async function authenticateWorkload(token: string, ctx: AuthenticationContext): Promise<Principal> {
  if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) throw authenticationFailed('not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch (err) {
    throw authenticationFailed('malformed JWT', err);
  }
  const forbidden = FORBIDDEN_HEADERS.find((h) => h in header);
  if (forbidden) throw authenticationFailed(`header "${forbidden}" is never honoured`);
  if (typeof header.alg !== 'string' || header.alg === 'none' || /^HS/.test(header.alg)) {
    throw authenticationFailed(`algorithm ${String(header.alg)} is not accepted`);
  }
  if (header.typ === 'at+jwt' || unverified.iss === ctx.brokerIssuer) {
    throw authenticationFailed('a broker-issued token was presented as identity');
  }

  const now = ctx.clock.now();
  const sub = typeof unverified.sub === 'string' ? unverified.sub : '';
  const iss = typeof unverified.iss === 'string' ? unverified.iss : undefined;
  const issuer =
    (iss && ctx.registry.issuerByIss.get(iss)) ||
    (sub.startsWith('spiffe://') ? ctx.registry.issuerByTrustDomain.get(sub.slice(9).split('/')[0]!) : undefined);

  if (issuer) return verifyIssuerToken(token, issuer, ctx, now);
  const assertingWorkload = iss && iss === sub ? ctx.registry.workloads.get(iss) : undefined;
  if (assertingWorkload && assertingWorkload.spec.public_keys.length) {
    return verifyClientAssertion(token, assertingWorkload, ctx, now);
  }
  throw authenticationFailed(`no trusted issuer for iss=${iss ?? '(none)'} sub=${sub.slice(0, 200)}`);
}

async function verifyIssuerToken(token: string, issuer: IssuerSpec, ctx: AuthenticationContext, now: Date): Promise<Principal> {
  let payload: JWTPayload;
  try {
    payload = await verifyJwt(token, ctx.issuerKeys.for(issuer), {
      issuer: issuer.kind === 'oidc' ? issuer.issuer : undefined,
      audience: issuer.audiences,
      algorithms: [...issuer.algorithms],
      // jose widens every time check, maxTokenAge included, by clockTolerance: adding the leeway here too
      // would accept tokens twice the leeway older than configured.
      clockTolerance: issuer.leeway_seconds,
      maxTokenAge: issuer.max_token_age_seconds,
      currentDate: now,
      requiredClaims: ['sub', 'exp', 'iat'],
      // Issuer tokens are presented again and again until they expire: their signature is checked once per key.
      reuse: true,
    });
  } catch (err) {
    throw authenticationFailed(`issuer ${issuer.id}: ${(err as Error & { code?: string }).code ?? 'error'}: ${(err as Error).message}`, err);
  }
  if (issuer.kind === 'spiffe' && !String(payload.sub).startsWith(`spiffe://${issuer.trust_domain}/`)) {
    throw authenticationFailed(`issuer ${issuer.id}: SVID outside trust domain ${issuer.trust_domain}`);
  }
  const workload = matchWorkload(ctx.registry, issuer.id, payload);
  return principal(workload, issuer.kind, issuer.id, payload, token, now);
}

async function verifyClientAssertion(token: string, workload: WorkloadRow, ctx: AuthenticationContext, now: Date): Promise<Principal> {
  let payload: JWTPayload;
  try {
    payload = await verifyJwt(token, workloadKeys(workload), {
      issuer: workload.id,
      subject: workload.id,
      audience: ctx.assertionAudiences,
      algorithms: ASSERTION_ALGORITHMS,
      maxTokenAge: MAX_ASSERTION_AGE_SECONDS,
      clockTolerance: ASSERTION_LEEWAY_SECONDS,
      currentDate: now,
      requiredClaims: ['jti', 'exp', 'iat'],
    });
  } catch (err) {
    throw authenticationFailed(`client assertion for ${workload.id}: ${(err as Error).message}`, err);
  }
  const iat = payload.iat!;
  const exp = payload.exp!;
  // A longer-lived assertion would be useless (maxTokenAge refuses it later anyway) and would pin its
  // replay-cache row, or overflow the timestamp column, for as long as the client asked.
  if (exp - iat > MAX_ASSERTION_AGE_SECONDS) {
    throw authenticationFailed(`client assertion for ${workload.id}: lifetime exp - iat = ${exp - iat}s exceeds ${MAX_ASSERTION_AGE_SECONDS}s`);
  }
  if (workload.status !== 'active') throw authenticationFailed(`workload ${workload.id} is ${workload.status}`);
  // The jti is remembered until jose would stop accepting the assertion: exp widened by the leeway (exp
  // is at most iat + MAX_ASSERTION_AGE_SECONDS here, so this is also the end of its maximum age).
  const replayableUntil = exp + ASSERTION_LEEWAY_SECONDS;
  if (!(await consumeAssertionJti(ctx.db, workload.id, String(payload.jti), new Date(replayableUntil * 1000)))) {
    throw authenticationFailed(`client assertion jti replayed for ${workload.id}`);
  }
  // The workload signs its own assertion, so any other claim in it is only its say-so: none of it may
  // reach policy, name a host whose signals apply, or be recorded as if an issuer had vouched for it.
  const vouched = Object.fromEntries(Object.entries(payload).filter(([k]) => ASSERTION_CLAIMS.has(k)));
  return principal(workload, 'client_assertion', `workload:${workload.id}`, vouched, token, now);
}

function principal(workload: WorkloadRow, method: Principal['method'], issuer: string, claims: JWTPayload, token: string, now: Date): Principal {
  return {
    workload,
    method,
    issuer,
    subject: String(claims.sub),
    claims,
    tokenAgeSeconds: Math.max(0, Math.floor(now.getTime() / 1000) - (claims.iat ?? 0)),
    tokenSha256: sha256Hex(token),
  };
}
