import { constants, KeyObject, verify as verifySignature, type webcrypto } from 'node:crypto';
import { types } from 'node:util';
import { metrics } from '../lib/metrics.js';
import { sha256Hex } from '../lib/hash.js';
import { errors, jwtVerify, UnsecuredJWT, type FlattenedJWSInput, type CompactJWSHeaderParameters, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';

/** How node:crypto checks each algorithm it takes over from WebCrypto, and the key it must be given. */
interface NativeAlgorithm {
  hash: 'sha256' | 'sha384' | 'sha512';
  /** The WebCrypto algorithm the resolved CryptoKey must have been imported for, and its curve or hash. */
  key: { name: 'ECDSA'; namedCurve: string } | { name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS'; hash: string };
}

const ec = (hash: NativeAlgorithm['hash'], namedCurve: string): NativeAlgorithm => ({ hash, key: { name: 'ECDSA', namedCurve } });
const rsa = (hash: NativeAlgorithm['hash'], name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS'): NativeAlgorithm => ({ hash, key: { name, hash: `SHA-${hash.slice(3)}` } });

const NATIVE: Record<string, NativeAlgorithm> = {
  ES256: ec('sha256', 'P-256'),
  ES384: ec('sha384', 'P-384'),
  ES512: ec('sha512', 'P-521'),
  RS256: rsa('sha256', 'RSASSA-PKCS1-v1_5'),
  RS384: rsa('sha384', 'RSASSA-PKCS1-v1_5'),
  RS512: rsa('sha512', 'RSASSA-PKCS1-v1_5'),
  PS256: rsa('sha256', 'RSA-PSS'),
  PS384: rsa('sha384', 'RSA-PSS'),
  PS512: rsa('sha512', 'RSA-PSS'),
};

/** RFC 7518 §3.3 / §3.5: jose refuses shorter RSA keys, and so does this path. */
const MIN_RSA_BITS = 2048;
/**
 * Buffer's base64url decoder is lenient where jose's is not: it drops a lone trailing character (a
 * segment of length 4k+1), so a signature with one character appended would decode to the same bytes
 * and a token with a new hash would verify. Only segments that re-encode to themselves take this path.
 */
const canonical = (segment: string, bytes: Buffer) => segment.length > 0 && bytes.toString('base64url') === segment;
/** jose reads the header as strict UTF-8; replacement characters would let a header jose refuses through. */
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The header of an unsecured JWT: how the already verified payload is handed to jose's claim checks. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/** The KeyObject of each resolved CryptoKey (jose's JWKS resolvers return the same object every time). */
const keyObjects = new WeakMap<webcrypto.CryptoKey, KeyObject>();

function keyObjectFor(key: unknown, alg: NativeAlgorithm): KeyObject | undefined {
  if (!types.isCryptoKey(key) || key.type !== 'public' || !key.usages.includes('verify')) return undefined;
  const a = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string }; modulusLength?: number };
  if (a.name !== alg.key.name) return undefined;
  if ('namedCurve' in alg.key ? a.namedCurve !== alg.key.namedCurve : a.hash?.name !== alg.key.hash || (a.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
  let object = keyObjects.get(key);
  if (!object) keyObjects.set(key, (object = KeyObject.from(key)));
  return object;
}

function parseHeader(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const header: unknown = JSON.parse(utf8.decode(bytes));
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? (header as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Signatures already checked, per key: a workload presents the same identity token for many requests
 * (a CI job's OIDC token for its whole run, an agent's JWT-SVID until it rotates), and checking it again
 * was the mint's largest single cost after its own signing (measured: 5.6 % of the broker's CPU at 32
 * clients). A signature check is a pure function of key, signed input and signature, so remembering
 * its result changes nothing a caller can see: the entry is found only for the same token (by its
 * SHA-256, so no token is kept) under the same KeyObject (a JWKS refresh or rotation imports new keys,
 * and their entries start empty), and the claims are checked again on every call. An entry is kept
 * until the token's `exp` (plus the caller's clock tolerance) and at most MAX_VERIFIED per key, the
 * least recently used first out. Only callers that pass `reuse` use it: single-use assertions would only fill it.
 */
const verifiedSignatures = new WeakMap<KeyObject, Map<string, number>>();
/**
 * Signature checks of callers that pass `reuse`: `checked` by node:crypto (passed or not), `reused`
 * from an earlier check, or `jose` for a token outside the common shape, which jose checks whole.
 */
export const signatureChecks = metrics.counter(
  'tessera_identity_signature_checks_total',
  'Identity token signatures: checked, reused from an earlier check of the same token under the same key, or checked by jose (uncommon shapes).',
);
export const MAX_VERIFIED = 4_096;

function alreadyVerified(key: KeyObject, digest: string, nowMs: number): boolean {
  const entries = verifiedSignatures.get(key);
  const until = entries?.get(digest);
  if (until === undefined) return false;
  entries!.delete(digest);
  if (until <= nowMs) return false;
  // Moved to the newest end: tokens in use stay while a flood of tokens used once pushes out the oldest.
  entries!.set(digest, until);
  return true;
}

function rememberVerified(key: KeyObject, digest: string, payload: JWTPayload, toleranceSeconds: number, nowMs: number): void {
  if (typeof payload.exp !== 'number' || (payload.exp + toleranceSeconds) * 1000 <= nowMs) return;
  let entries = verifiedSignatures.get(key);
  if (!entries) verifiedSignatures.set(key, (entries = new Map()));
  if (entries.size >= MAX_VERIFIED) entries.delete(entries.keys().next().value!);
  entries.set(digest, (payload.exp + toleranceSeconds) * 1000);
}

/** The clock tolerance in seconds. jose also takes a string ('30s'); read as 0 here, an entry then only ends early. */
const toleranceOf = (options: JWTVerifyOptions) => (typeof options.clockTolerance === 'number' ? options.clockTolerance : 0);

/**
 * jose's `jwtVerify`, with the signature checked by node:crypto: jose on Node 20 verifies through
 * WebCrypto, an async job on the thread pool that costs a mint about 180 µs of CPU more than a
 * synchronous `crypto.verify` with a KeyObject converted once (measured: 300 vs 119 µs per call).
 *
 * Only the signature moves. The algorithm allow-list is applied first, the key comes from the same
 * resolver jose would call (kid selection, JWKS fetch and cooldown unchanged) and must have been
 * imported for exactly the token's algorithm, and the claims go through jose's own claim-set checks
 * (`UnsecuredJWT.decode` runs the validation `jwtVerify` runs) once the signature holds. Anything
 * outside the common shape (another algorithm, a `crit` or `b64` header, a key that is not a
 * verify-only CryptoKey of that algorithm, an RSA key under 2048 bits, a segment that is not canonical
 * base64url, a header that is not strict UTF-8 JSON) goes
 * to jose's `jwtVerify` whole, so its errors and edge cases stay exactly jose's.
 */
export async function verifyJwt(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions & { algorithms: string[]; reuse?: boolean }): Promise<JWTPayload> {
  const parts = token.split('.');
  const [h, p, s] = parts as [string, string, string];
  const [hb, pb, sb] = parts.length === 3 ? parts.map((x) => Buffer.from(x, 'base64url')) : [];
  const shaped = hb && pb && sb && canonical(h, hb) && canonical(p, pb) && canonical(s, sb);
  const header = shaped ? parseHeader(hb) : undefined;
  const alg = typeof header?.alg === 'string' && Object.hasOwn(NATIVE, header.alg) ? NATIVE[header.alg] : undefined;
  if (!header || !alg || !options.algorithms.includes(header.alg as string) || 'crit' in header || 'b64' in header || options.typ !== undefined) {
    if (options.reuse) signatureChecks.inc({ result: 'jose' });
    return (await jwtVerify(token, getKey, options)).payload;
  }
  const jws: FlattenedJWSInput = { protected: h, payload: p, signature: s };
  const resolved = await getKey(header as CompactJWSHeaderParameters, jws);
  const key = keyObjectFor(resolved, alg);
  if (!key) {
    if (options.reuse) signatureChecks.inc({ result: 'jose' });
    return (await jwtVerify(token, resolved, options)).payload;
  }

  const digest = options.reuse ? sha256Hex(token) : undefined;
  const nowMs = (options.currentDate ?? new Date()).getTime();
  if (digest && alreadyVerified(key, digest, nowMs)) {
    signatureChecks.inc({ result: 'reused' });
    return UnsecuredJWT.decode(`${NONE_HEADER}.${p}.`, options).payload;
  }
  if (digest) signatureChecks.inc({ result: 'checked' });

  let valid: boolean;
  try {
    const params = alg.key.name === 'ECDSA' ? { key, dsaEncoding: 'ieee-p1363' as const } : alg.key.name === 'RSA-PSS'
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : { key, padding: constants.RSA_PKCS1_PADDING };
    valid = verifySignature(alg.hash, Buffer.from(`${h}.${p}`), params, sb!);
  } catch (cause) {
    throw new errors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!valid) throw new errors.JWSSignatureVerificationFailed();
  const { payload } = UnsecuredJWT.decode(`${NONE_HEADER}.${p}.`, options);
  if (digest) rememberVerified(key, digest, payload, toleranceOf(options), nowMs);
  return payload;
}
