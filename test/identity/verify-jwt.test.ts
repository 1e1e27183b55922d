import { generateKeyPairSync, KeyObject, sign as cryptoSign } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_VERIFIED, signatureChecks, verifyJwt } from '../../src/identity/verify-jwt.js';

/**
 * verifyJwt must accept exactly what jose's jwtVerify accepts, with the same error code when it
 * refuses: each case runs through both and the outcomes are compared.
 */
const NOW = new Date('2026-06-01T12:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);
const OPTIONS = {
  issuer: 'https://ci.example',
  audience: ['tessera', 'tessera-2'],
  algorithms: ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'],
  clockTolerance: 60,
  maxTokenAge: 600,
  currentDate: NOW,
  requiredClaims: ['sub', 'exp', 'iat'],
} satisfies JWTVerifyOptions;

type Outcome = { ok: true; payload: JWTPayload } | { ok: false; code: string };
const outcome = async (run: () => Promise<JWTPayload>): Promise<Outcome> => {
  try {
    return { ok: true, payload: await run() };
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? (err as Error).name };
  }
};
const both = async (token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions & { algorithms: string[] } = OPTIONS) => {
  const jose = await outcome(async () => (await jwtVerify(token, getKey, options)).payload);
  const ours = await outcome(() => verifyJwt(token, getKey, options));
  return { jose, ours };
};

interface Signer {
  alg: string;
  kid: string;
  key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}
const signers: Record<string, Signer> = {};
/** An RSA key jose refuses (RFC 7518 requires 2048 bits), in the set to show the same refusal; jose will not sign with it either. */
const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const signNatively = (header: Record<string, unknown>, payload: JWTPayload, key: KeyObject) => {
  const input = `${b64json(header)}.${b64json(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
};
let jwks: JWTVerifyGetKey;

async function signer(alg: string, kid: string, options: Parameters<typeof generateKeyPair>[1] = {}): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { alg, kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: OPTIONS.issuer, aud: 'tessera', sub: 'repo:acme/api', iat: T - 10, exp: T + 300, repository: 'acme/api', ...extra });
const sign = (s: Signer, payload: JWTPayload = claims(), header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: s.alg, kid: s.kid, ...header }).sign(s.key);

beforeAll(async () => {
  for (const [alg, kid] of [['ES256', 'es256'], ['ES384', 'es384'], ['RS256', 'rs256'], ['PS256', 'ps256'], ['EdDSA', 'ed']] as const) {
    signers[kid] = await signer(alg, kid);
  }
  // Signatures whose length is a multiple of 3 bytes: base64url without a partial last group.
  signers.es512 = await signer('ES512', 'es512');
  signers.rs3072 = await signer('RS256', 'rs3072', { modulusLength: 3072 });
  // An RSA key jose refuses (RFC 7518 requires 2048 bits), kept in the set to show the same refusal.
  jwks = createLocalJWKSet({ keys: [...Object.values(signers).map((s) => s.jwk), { ...(small.publicKey.export({ format: 'jwk' }) as JWK), kid: 'small', alg: 'RS256', use: 'sig' }] });
});

const subtle = globalThis.crypto.subtle;
afterEach(() => {
  delete (subtle as unknown as Record<string, unknown>).verify;
});

describe('verifyJwt against jose jwtVerify', () => {
  it('accepts the same valid tokens with the same payload, for every algorithm', async () => {
    for (const s of ['es256', 'es384', 'es512', 'rs256', 'rs3072', 'ps256', 'ed']) {
      const { jose, ours } = await both(await sign(signers[s]!), jwks);
      expect(jose, s).toMatchObject({ ok: true });
      expect(ours, s).toEqual(jose);
    }
  });

  it('checks ES and RS signatures without WebCrypto (EdDSA still goes through jose)', async () => {
    const tokens = { es256: await sign(signers.es256!), rs256: await sign(signers.rs256!), ps256: await sign(signers.ps256!), ed: await sign(signers.ed!) };
    Object.defineProperty(subtle, 'verify', { configurable: true, value: () => Promise.reject(new Error('WebCrypto was called')) });
    expect(await outcome(() => verifyJwt(tokens.es256, jwks, OPTIONS))).toMatchObject({ ok: true });
    expect(await outcome(() => verifyJwt(tokens.rs256, jwks, OPTIONS))).toMatchObject({ ok: true });
    expect(await outcome(() => verifyJwt(tokens.ps256, jwks, OPTIONS))).toMatchObject({ ok: true });
    expect(await outcome(() => verifyJwt(tokens.ed, jwks, OPTIONS))).toEqual({ ok: false, code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('refuses what jose refuses, with the same error code', async () => {
    const es = signers.es256!;
    const valid = await sign(es);
    const [h, p, s] = valid.split('.') as [string, string, string];
    const otherPayload = Buffer.from(JSON.stringify(claims({ sub: 'repo:acme/other' }))).toString('base64url');
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    const cases: Record<string, string> = {
      expired: await sign(es, claims({ iat: T - 500, exp: T - 61 })),
      'expired within leeway': await sign(es, claims({ iat: T - 500, exp: T - 30 })),
      'not yet valid': await sign(es, claims({ nbf: T + 120 })),
      'nbf within leeway': await sign(es, claims({ nbf: T + 30 })),
      'issued in the future': await sign(es, claims({ iat: T + 120, exp: T + 600 })),
      'older than max age': await sign(es, claims({ iat: T - 700, exp: T + 300 })),
      'wrong issuer': await sign(es, claims({ iss: 'https://evil.example' })),
      'wrong audience': await sign(es, claims({ aud: 'someone-else' })),
      'audience array with one of ours': await sign(es, claims({ aud: ['x', 'tessera-2'] })),
      'no sub': await sign(es, claims({ sub: undefined })),
      'no exp': await sign(es, claims({ exp: undefined })),
      'exp not a number': await sign(es, claims({ exp: String(T + 300) as never })),
      'payload swapped': `${h}.${otherPayload}.${s}`,
      'signature flipped': `${h}.${p}.${flipped}`,
      'signature truncated': `${h}.${p}.${s.slice(0, -4)}`,
      'signature with a stray character': `${h}.${p}.${s}!`,
      'signature padded': `${h}.${p}.${s}==`,
      'empty signature': `${h}.${p}.`,
      'two segments': `${h}.${p}`,
      'payload not JSON': `${h}.${Buffer.from('not json').toString('base64url')}.${s}`,
      'payload an array': `${h}.${Buffer.from('[1]').toString('base64url')}.${s}`,
      'unknown kid': await sign(es, claims(), { kid: 'nope' }),
      'alg not allowed': await sign(await signer('PS384', 'ps256'), claims()),
      'alg of another key type': await sign({ ...signers.rs256!, kid: 'es256' }),
      'ES384 header on a P-256 kid': await sign({ ...signers.es384!, kid: 'es256' }),
      'crit header': signNatively({ alg: 'ES256', kid: 'es256', crit: ['exp'] }, claims(), KeyObject.from(es.key)),
      'b64 false': `${b64json({ alg: 'ES256', kid: 'es256', b64: false, crit: ['b64'] })}.${p}.${s}`,
      'RSA key under 2048 bits': signNatively({ alg: 'RS256', kid: 'small' }, claims(), small.privateKey),
    };
    // Buffer's decoder drops a lone trailing character; jose's refuses it. A token with a character
    // appended must not verify as a token with a new hash (found in review).
    for (const kid of ['es384', 'es512', 'rs3072']) {
      const [sh, sp, ss] = (await sign(signers[kid]!)).split('.') as [string, string, string];
      for (const c of ['A', 'Q', '_']) {
        cases[`${kid} signature + ${c}`] = `${sh}.${sp}.${ss}${c}`;
        cases[`${kid} header + ${c}`] = `${sh}${c}.${sp}.${ss}`;
        cases[`${kid} payload + ${c}`] = `${sh}.${sp}${c}.${ss}`;
      }
    }
    // Signed, but the header is not UTF-8: jose decodes strictly.
    const badUtf8 = Buffer.concat([Buffer.from('{"alg":"ES256","kid":"es256","x":"'), Buffer.from([0xff, 0xc0, 0xaf]), Buffer.from('"}')]).toString('base64url');
    const badInput = `${badUtf8}.${b64json(claims())}`;
    cases['header not UTF-8'] = `${badInput}.${cryptoSign('sha256', Buffer.from(badInput), { key: KeyObject.from(es.key), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    for (const [name, token] of Object.entries(cases)) {
      const { jose, ours } = await both(token, jwks);
      expect(ours, name).toEqual(jose);
    }
    // The cases refuse for their own reasons, not one shared failure.
    const codes = new Set<string>();
    for (const token of Object.values(cases)) {
      const r = await outcome(() => verifyJwt(token, jwks, OPTIONS));
      if (!r.ok) codes.add(r.code);
    }
    expect([...codes].sort()).toEqual(
      expect.arrayContaining(['ERR_JWT_EXPIRED', 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'ERR_JWS_INVALID', 'ERR_JWKS_NO_MATCHING_KEY', 'ERR_JOSE_ALG_NOT_ALLOWED']),
    );
  });

  it('resolves the key through the same resolver, and only once the algorithm is allowed', async () => {
    const seen: string[] = [];
    const spy: JWTVerifyGetKey = (header, token) => {
      seen.push(String(header.kid));
      return jwks(header, token);
    };
    await verifyJwt(await sign(signers.es256!), spy, OPTIONS);
    const es384 = await sign(signers.es384!);
    expect(await outcome(() => verifyJwt(es384, spy, { ...OPTIONS, algorithms: ['ES256'] }))).toEqual({ ok: false, code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
    expect(seen).toEqual(['es256']);
  });

  it('takes a KeyObject-less key (a raw JWK from a custom resolver) through jose, same result', async () => {
    const raw: JWTVerifyGetKey = () => signers.es256!.jwk as never;
    const { jose, ours } = await both(await sign(signers.es256!), raw);
    expect(jose).toMatchObject({ ok: true });
    expect(ours).toEqual(jose);
  });
});

describe('verifyJwt with reuse: a signature checked once per token and key', () => {
  const REUSE = { ...OPTIONS, reuse: true };
  const counts = () => ({ checked: signatureChecks.get({ result: 'checked' }), reused: signatureChecks.get({ result: 'reused' }) });
  const delta = (before: ReturnType<typeof counts>) => {
    const now = counts();
    return { checked: now.checked - before.checked, reused: now.reused - before.reused };
  };

  it('checks the signature of a token once, then reuses the check, with the payload jose gives', async () => {
    const token = await sign(signers.es256!, claims({ jti: 'reuse-1' }));
    const before = counts();
    const first = await verifyJwt(token, jwks, REUSE);
    const second = await verifyJwt(token, jwks, REUSE);
    expect(delta(before)).toEqual({ checked: 1, reused: 1 });
    expect(second).toEqual(first);
    expect(second).toEqual((await jwtVerify(token, jwks, OPTIONS)).payload);
  });

  it('still checks the claims of a reused token on every call, as jose does, while its check is remembered', async () => {
    const token = await sign(signers.es256!, claims({ jti: 'reuse-claims', iat: T - 10, nbf: T - 10 }));
    await verifyJwt(token, jwks, REUSE);
    const before = counts();
    // Each refusal below comes from the reused path (the entry lives until exp): jose refuses the same way.
    const refused: Array<[string, JWTVerifyOptions & { algorithms: string[] }, string]> = [
      ['older than maxTokenAge', { ...OPTIONS, maxTokenAge: 5, clockTolerance: 0 }, 'ERR_JWT_EXPIRED'],
      ['not yet valid (the clock went back)', { ...OPTIONS, currentDate: new Date((T - 100) * 1000), clockTolerance: 0 }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['another audience', { ...OPTIONS, audience: 'someone-else' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['another issuer', { ...OPTIONS, issuer: 'https://other.example' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['a claim now required', { ...OPTIONS, requiredClaims: ['sub', 'exp', 'iat', 'environment'] }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ];
    for (const [name, options, code] of refused) {
      expect(await outcome(() => verifyJwt(token, jwks, { ...options, reuse: true })), name).toEqual({ ok: false, code });
      expect(await outcome(async () => (await jwtVerify(token, jwks, options)).payload), name).toEqual({ ok: false, code });
    }
    expect(delta(before)).toEqual({ checked: 0, reused: refused.length });
    // Past exp and the tolerance the entry is gone, and jose's refusal is the one given.
    const later = { ...OPTIONS, currentDate: new Date((T + 300 + OPTIONS.clockTolerance + 1) * 1000) };
    expect(await outcome(() => verifyJwt(token, jwks, { ...later, reuse: true }))).toEqual({ ok: false, code: 'ERR_JWT_EXPIRED' });
  });

  it('refuses a remembered token once its key leaves the key set or its algorithm is no longer allowed', async () => {
    const token = await sign(signers.es256!, claims({ jti: 'reuse-guards' }));
    let served = true;
    const rotating: JWTVerifyGetKey = (header, jws) => (served ? jwks(header, jws) : createLocalJWKSet({ keys: [signers.es384!.jwk] })(header, jws));
    await verifyJwt(token, rotating, REUSE);
    served = false;
    expect(await outcome(() => verifyJwt(token, rotating, REUSE))).toEqual({ ok: false, code: 'ERR_JWKS_NO_MATCHING_KEY' });
    served = true;
    expect(await outcome(() => verifyJwt(token, rotating, { ...REUSE, algorithms: ['ES384'] }))).toEqual({ ok: false, code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
    expect(await outcome(() => verifyJwt(token, rotating, REUSE))).toMatchObject({ ok: true });
  });

  it('refuses a remembered token with its signature changed, and checks a token again under a newly imported key', async () => {
    const token = await sign(signers.es256!, claims({ jti: 'reuse-tamper' }));
    await verifyJwt(token, jwks, REUSE);
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = Buffer.from(s, 'base64url');
    flipped[10] ^= 1;
    expect(await outcome(() => verifyJwt(`${h}.${p}.${flipped.toString('base64url')}`, jwks, REUSE))).toEqual({ ok: false, code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    // The same JWK imported again (a JWKS refresh): a new key, so the signature is checked again.
    const refreshed = createLocalJWKSet({ keys: [signers.es256!.jwk] });
    const before = counts();
    await verifyJwt(token, refreshed, REUSE);
    await verifyJwt(token, refreshed, REUSE);
    expect(delta(before)).toEqual({ checked: 1, reused: 1 });
  });

  it('remembers nothing for callers without reuse, and at most MAX_VERIFIED tokens per key, the least recently used out first', async () => {
    const token = await sign(signers.es256!, claims({ jti: 'no-reuse' }));
    const before = counts();
    await verifyJwt(token, jwks, OPTIONS);
    await verifyJwt(token, jwks, OPTIONS);
    expect(delta(before)).toEqual({ checked: 0, reused: 0 });

    // A key of its own, so earlier tests' entries do not count; tokens signed natively (fast).
    const own = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ownKeys = createLocalJWKSet({ keys: [{ ...(own.publicKey.export({ format: 'jwk' }) as JWK), kid: 'own', alg: 'ES256', use: 'sig' }] });
    const tokens = Array.from({ length: MAX_VERIFIED + 1 }, (_, i) => signNatively({ alg: 'ES256', kid: 'own' }, claims({ jti: `fill-${i}` }), own.privateKey));
    for (const t of tokens.slice(0, MAX_VERIFIED)) await verifyJwt(t, ownKeys, REUSE);
    const full = counts();
    await verifyJwt(tokens[0]!, ownKeys, REUSE); // the oldest, used again: now the most recently used
    await verifyJwt(tokens[MAX_VERIFIED]!, ownKeys, REUSE); // one more token makes room
    await verifyJwt(tokens[0]!, ownKeys, REUSE); // still remembered
    await verifyJwt(tokens[2]!, ownKeys, REUSE); // so is the third
    await verifyJwt(tokens[1]!, ownKeys, REUSE); // the least recently used went out
    expect(delta(full)).toEqual({ checked: 2, reused: 3 });
  });
});
