import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { toAccessToken, type TesseraAccessToken } from './access-token.js';
import { verifyDpopProof, type DpopRequest } from './dpop.js';
import { VerificationError } from './errors.js';
import { createStatusListClient } from './status-list-client.js';
import { TokenStatus } from './status-list.js';

export interface VerifierOptions {
  /** The broker's URL, exactly as it appears in `iss`. */
  issuer: string;
  /** Accepted `aud` values; a token matching any one is accepted. */
  audience: string | string[];
  /** Defaults to `${issuer}/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Inline key set for air-gapped services; replaces fetching `jwksUri`. */
  jwks?: JSONWebKeySet;
  clockToleranceSeconds?: number;
  /** Minimum time between JWKS refetches triggered by an unknown `kid`. */
  jwksCooldownSeconds?: number;
  /** Refetch the JWKS once it is this old, even when every `kid` is known. */
  jwksCacheMaxAgeSeconds?: number;
  /** Check the Token Status List for tokens with a `status` claim; `false` skips it. */
  checkStatus?: boolean;
  /** Upper bound on trusting a fetched status list; the list's own `ttl` may shorten it. */
  statusListCacheSeconds?: number;
  /** Window in which a DPoP proof's `iat` is accepted. */
  dpopMaxAgeSeconds?: number;
  fetch?: typeof fetch;
  /** The clock for every time check except the JWKS cooldown, which jose keeps on wall time. */
  now?: () => Date;
}

/** What a route demands beyond a valid token. */
export interface VerifyRequirements {
  /** Every listed scope must be granted; a string may hold several, space-separated. */
  scope?: string | string[];
  task?: string;
  /**
   * Required when the token is DPoP-bound (`cnf.jkt`). Proof `jti` replay is not tracked: a
   * service that must stop replays within the proof window keeps its own set of seen `jti`s.
   */
  dpop?: DpopRequest;
}

export interface Verifier {
  verify(token: string, requirements?: VerifyRequirements): Promise<TesseraAccessToken>;
}

// CI runners' and services' clocks drift by seconds, not minutes.
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
// jose's defaults: an unknown kid refetches at most twice a minute; keys re-read every 10 minutes.
const DEFAULT_JWKS_COOLDOWN_SECONDS = 30;
const DEFAULT_JWKS_CACHE_MAX_AGE_SECONDS = 600;
// Revocation reaches a verifier within a minute even if the broker publishes a longer ttl.
const DEFAULT_STATUS_LIST_CACHE_SECONDS = 60;
// RFC 9449 leaves the window to the server; a proof is made per request, so a minute is generous.
const DEFAULT_DPOP_MAX_AGE_SECONDS = 60;

function configError(field: string, fix: string): TypeError {
  return new TypeError(`createVerifier: invalid "${field}": ${fix}`);
}

function keySet(options: VerifierOptions): JWTVerifyGetKey {
  if (options.jwks && options.jwksUri) throw configError('jwks', 'give either jwks (inline) or jwksUri, not both');
  if (options.jwks) return createLocalJWKSet(options.jwks);
  const uri = options.jwksUri ?? `${options.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;
  if (!URL.canParse(uri)) throw configError('jwksUri', 'must be an absolute URL');
  return createRemoteJWKSet(new URL(uri), {
    cooldownDuration: (options.jwksCooldownSeconds ?? DEFAULT_JWKS_COOLDOWN_SECONDS) * 1000,
    cacheMaxAge: (options.jwksCacheMaxAgeSeconds ?? DEFAULT_JWKS_CACHE_MAX_AGE_SECONDS) * 1000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
}

// The client learns that the token was refused and the broad reason; the cause keeps the detail.
function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `token claim "${err.claim}" is invalid`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key matches the token kid';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'token malformed';
  return 'token could not be verified';
}

function scopesOf(required: string | string[] | undefined): string[] {
  return [required ?? []].flat().flatMap((s) => s.split(/\s+/)).filter(Boolean);
}

/** Builds a verifier for one broker; reuse it so JWKS and status lists stay cached. */
export function createVerifier(options: VerifierOptions): Verifier {
  if (!URL.canParse(options.issuer)) throw configError('issuer', 'must be the broker URL, as in the token iss');
  const audience = options.audience;
  if (audience.length === 0) throw configError('audience', 'give at least one audience');
  const now = options.now ?? (() => new Date());
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const keys = keySet(options);
  const status = createStatusListClient({
    keys,
    issuer: options.issuer,
    fetch: options.fetch ?? fetch,
    now,
    clockToleranceSeconds: clockTolerance,
    cacheSeconds: options.statusListCacheSeconds ?? DEFAULT_STATUS_LIST_CACHE_SECONDS,
  });

  async function verify(token: string, requirements: VerifyRequirements = {}): Promise<TesseraAccessToken> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        typ: 'at+jwt',
        algorithms: ['ES256'],
        issuer: options.issuer,
        audience,
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'scope', 'task'],
        clockTolerance,
        currentDate: now(),
      }));
    } catch (cause) {
      throw new VerificationError('invalid_token', describe(cause), { cause });
    }
    const claims = toAccessToken(payload);

    if (claims.cnf?.jkt !== undefined) {
      if (!requirements.dpop) throw new VerificationError('invalid_dpop_proof', 'token is DPoP-bound; a DPoP proof is required');
      await verifyDpopProof(requirements.dpop, token, claims.cnf.jkt, {
        now: now(),
        maxAgeSeconds: options.dpopMaxAgeSeconds ?? DEFAULT_DPOP_MAX_AGE_SECONDS,
        clockToleranceSeconds: clockTolerance,
      });
    } else if (requirements.dpop) {
      // RFC 9449 section 7.1: the DPoP scheme with an unbound token is a malformed request.
      throw new VerificationError('invalid_token', 'token is not DPoP-bound');
    }

    const granted = new Set(claims.scope.split(' '));
    const missing = scopesOf(requirements.scope).filter((s) => !granted.has(s));
    if (missing.length > 0) throw new VerificationError('insufficient_scope', `missing scope: ${missing.join(' ')}`);
    if (requirements.task !== undefined && claims.task !== requirements.task) {
      throw new VerificationError('wrong_task', 'token was issued for a different task');
    }

    if (claims.status && options.checkStatus !== false) {
      const value = await status.statusOf(claims.status.status_list);
      if (value !== TokenStatus.VALID) {
        throw new VerificationError('token_revoked', value === TokenStatus.SUSPENDED ? 'token suspended' : 'token revoked');
      }
    }
    return claims;
  }

  return { verify };
}
