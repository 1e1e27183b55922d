import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify, type JWK } from 'jose';
import { VerificationError } from './errors.js';

/** The request a DPoP proof must be bound to: the proof JWT (the `DPoP` header), method and full URL. */
export interface DpopRequest {
  proof: string;
  method: string;
  url: string;
}

/** Asymmetric JWS algorithms accepted for proofs (RFC 9449 forbids `none` and MAC algorithms). */
export const DPOP_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519',
];

// Members that only a private or symmetric JWK has; a proof carrying one leaked its key.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function invalid(message: string, cause?: unknown): VerificationError {
  return new VerificationError('invalid_dpop_proof', message, { cause });
}

// RFC 9449 section 4.3: htu is compared without query and fragment, after URL normalisation.
function normalizeHtu(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  url.search = '';
  url.hash = '';
  return url.href;
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired || (err instanceof errors.JWTClaimValidationFailed && err.claim === 'iat')) {
    return 'DPoP proof iat is outside the accepted window';
  }
  if (err instanceof errors.JWTClaimValidationFailed) return `DPoP proof claim "${err.claim}" is invalid`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'DPoP proof algorithm not allowed';
  return 'DPoP proof signature or header invalid';
}

/**
 * Checks a DPoP proof (RFC 9449 section 4.3) for a request carrying `accessToken`, bound to `jkt`.
 * Proof `jti` replay is not tracked here: a service that needs it keeps a cache of seen `jti`
 * values for `maxAgeSeconds` (the proof's iat window).
 */
export async function verifyDpopProof(
  request: DpopRequest,
  accessToken: string,
  jkt: string,
  options: { now: Date; maxAgeSeconds: number; clockToleranceSeconds: number },
): Promise<void> {
  let header;
  try {
    header = decodeProtectedHeader(request.proof);
  } catch (cause) {
    throw invalid('DPoP proof is not a JWT', cause);
  }
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (jwk && PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) throw invalid('DPoP proof jwk is not a public key');

  let result;
  try {
    result = await jwtVerify(request.proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: DPOP_ALGORITHMS,
      requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
      maxTokenAge: options.maxAgeSeconds,
      clockTolerance: options.clockToleranceSeconds,
      currentDate: options.now,
    });
  } catch (cause) {
    throw invalid(describe(cause), cause);
  }
  const { payload, protectedHeader } = result;

  if (payload.htm !== request.method.toUpperCase()) throw invalid('DPoP proof htm does not match the request method');
  const htu = typeof payload.htu === 'string' ? normalizeHtu(payload.htu) : undefined;
  if (htu === undefined || htu !== normalizeHtu(request.url)) throw invalid('DPoP proof htu does not match the request URL');
  const ath = createHash('sha256').update(accessToken).digest('base64url');
  if (payload.ath !== ath) throw invalid('DPoP proof ath does not match the access token');
  const thumbprint = await calculateJwkThumbprint(protectedHeader.jwk as JWK, 'sha256');
  if (thumbprint !== jkt) throw invalid('DPoP proof key does not match the token cnf.jkt');
}
