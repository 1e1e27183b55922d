import { createPublicKey } from 'node:crypto';
import { z } from 'zod';

/**
 * Members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4). A configuration
 * document is stored whole in config_versions, so a pasted private key would be kept there for good:
 * refuse it, naming the member, before anything is stored.
 */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Signature algorithms per key type, and the one curve each EC algorithm is defined on. */
const ALGORITHMS = {
  EC: ['ES256', 'ES384', 'ES512'],
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  OKP: ['EdDSA', 'Ed25519'],
} as const;
const EC_CURVE_OF_ALG: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
const SIGNING_CURVES = { EC: ['P-256', 'P-384', 'P-521'], OKP: ['Ed25519', 'Ed448'] } as const;
const REQUIRED_MEMBERS = { EC: ['crv', 'x', 'y'], RSA: ['n', 'e'], OKP: ['crv', 'x'] } as const;
/** NIST SP 800-131A: RSA moduli below 2048 bits no longer protect signatures. */
const MIN_RSA_MODULUS_BITS = 2048;

const base64url = z.string().min(1).regex(/^[A-Za-z0-9_-]+$/, 'must be base64url without padding');

const members = z.strictObject({
  kty: z.enum(['EC', 'RSA', 'OKP'], { error: 'must be EC, RSA or OKP: only public asymmetric signature keys are accepted' }),
  crv: z.string().optional(),
  x: base64url.optional(),
  y: base64url.optional(),
  n: base64url.optional(),
  e: base64url.optional(),
  kid: z.string().min(1).max(256).optional(),
  alg: z.string().optional(),
  use: z.literal('sig', { error: 'must be "sig": these keys verify signatures' }).optional(),
  key_ops: z.array(z.literal('verify', { error: 'must be "verify" only' })).optional(),
  // Certificates as published by some issuers (GitHub's JWKS has them); kept for reference, never trusted on their own.
  x5c: z.array(z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64 DER certificates')).optional(),
  x5t: base64url.optional(),
  'x5t#S256': base64url.optional(),
});

const withoutPrivateMembers = z.record(z.string(), z.unknown()).superRefine((jwk, ctx) => {
  for (const m of PRIVATE_MEMBERS) {
    if (!(m in jwk)) continue;
    const what = m === 'k' ? 'a symmetric secret' : 'private key material';
    ctx.addIssue({ code: 'custom', path: [m], message: `"${m}" is ${what}: configure the public key only (remove "${m}")` });
  }
});

/** A public JWK for verifying signatures: EC, RSA or OKP with its public members; private members are refused. */
export const publicJwk = withoutPrivateMembers.pipe(
  members.superRefine((jwk, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: path ? [path] : [], message });
    const missing = REQUIRED_MEMBERS[jwk.kty].filter((m) => jwk[m] === undefined);
    for (const m of missing) issue(m, `required for kty ${jwk.kty}`);
    if (missing.length) return;
    if (jwk.kty !== 'RSA' && !(SIGNING_CURVES[jwk.kty] as readonly string[]).includes(jwk.crv!)) {
      return issue('crv', `must be one of ${SIGNING_CURVES[jwk.kty].join(', ')} for kty ${jwk.kty} (signature curves)`);
    }
    if (jwk.alg !== undefined) {
      if (!(ALGORITHMS[jwk.kty] as readonly string[]).includes(jwk.alg)) return issue('alg', `must be one of ${ALGORITHMS[jwk.kty].join(", ")} for kty ${jwk.kty}`);
      if (jwk.kty === 'EC' && EC_CURVE_OF_ALG[jwk.alg] !== jwk.crv) return issue('alg', `${jwk.alg} needs curve ${EC_CURVE_OF_ALG[jwk.alg]}, not ${jwk.crv}`);
    }
    let key;
    try {
      key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e }, format: 'jwk' });
    } catch (err) {
      return issue('', `not a valid ${jwk.kty} public key (${(err as Error).message})`);
    }
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (jwk.kty === 'RSA' && (bits ?? 0) < MIN_RSA_MODULUS_BITS) issue('n', `an RSA modulus of ${bits} bits is too short: at least ${MIN_RSA_MODULUS_BITS}`);
  }),
);
export type PublicJwk = z.infer<typeof publicJwk>;
