import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createVerifier } from '../../src/verify/verifier.js';
import { VerificationError } from '../../src/verify/errors.js';
import { FakeBroker, NOW, NOW_S, makeKey, type SigningKey } from './fake-broker.js';

const URL_ = 'https://payments.example/v1/refunds';

let broker: FakeBroker;
let key: SigningKey;
let client: { privateKey: CryptoKey; jwk: JWK; jkt: string };

beforeAll(async () => {
  broker = await new FakeBroker().start();
  key = await makeKey('k1');
  broker.published = [key];
  client = await dpopKey();
});
afterAll(() => broker.stop());

async function dpopKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

function verifier() {
  return createVerifier({ issuer: broker.issuer, audience: 'payments', now: () => NOW });
}

function boundToken(jkt = client.jkt): Promise<string> {
  return broker.token(key, { cnf: { jkt } });
}

async function proof(
  token: string,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  signer = client,
): Promise<string> {
  const ath = createHash('sha256').update(token).digest('base64url');
  return new SignJWT({ jti: 'proof-1', htm: 'POST', htu: URL_, iat: NOW_S, ath, ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: signer.jwk, ...header })
    .sign(signer.privateKey);
}

async function refusal(promise: Promise<unknown>): Promise<VerificationError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(VerificationError);
  return err as VerificationError;
}

describe('verify: DPoP-bound tokens', () => {
  it('accepts a valid proof; htu is compared without query and fragment', async () => {
    const token = await boundToken();
    const request = { proof: await proof(token), method: 'POST', url: `${URL_}?page=2#x` };
    await expect(verifier().verify(token, { dpop: request })).resolves.toMatchObject({ cnf: { jkt: client.jkt } });
  });

  it('requires a proof for a bound token', async () => {
    expect((await refusal(verifier().verify(await boundToken()))).code).toBe('invalid_dpop_proof');
  });

  it('rejects a proof offered with a token that is not DPoP-bound', async () => {
    const token = await broker.token(key);
    const err = await refusal(verifier().verify(token, { dpop: { proof: await proof(token), method: 'POST', url: URL_ } }));
    expect(err.code).toBe('invalid_token');
  });

  it.each([
    ['wrong htu', {}, { url: 'https://payments.example/v1/other' }, 'htu'],
    ['wrong htm', {}, { method: 'GET' }, 'htm'],
    ['wrong ath', { ath: createHash('sha256').update('other').digest('base64url') }, {}, 'ath'],
    ['iat too old', { iat: NOW_S - 66 }, {}, 'iat is outside'],
    ['iat in the future', { iat: NOW_S + 10 }, {}, 'iat is outside'],
    ['no ath', { ath: undefined }, {}, 'claim "ath"'],
  ])('rejects a proof with %s', async (_name, claims, request, mention) => {
    const token = await boundToken();
    const dpop = { proof: await proof(token, claims), method: 'POST', url: URL_, ...request };
    const err = await refusal(verifier().verify(token, { dpop }));
    expect(err.code).toBe('invalid_dpop_proof');
    expect(err.message).toContain(mention);
  });

  it('rejects a proof made with a key other than cnf.jkt', async () => {
    const token = await boundToken();
    const other = await dpopKey();
    const err = await refusal(verifier().verify(token, { dpop: { proof: await proof(token, {}, {}, other), method: 'POST', url: URL_ } }));
    expect([err.code, err.message]).toEqual(['invalid_dpop_proof', 'DPoP proof key does not match the token cnf.jkt']);
  });

  it('rejects a proof with the wrong typ', async () => {
    const token = await boundToken();
    const err = await refusal(verifier().verify(token, { dpop: { proof: await proof(token, {}, { typ: 'JWT' }), method: 'POST', url: URL_ } }));
    expect([err.code, err.message]).toEqual(['invalid_dpop_proof', 'DPoP proof claim "typ" is invalid']);
  });

  it('rejects a proof whose embedded jwk carries private members', async () => {
    const token = await boundToken();
    const leaky = { ...client, jwk: await exportJWK(client.privateKey) };
    const err = await refusal(verifier().verify(token, { dpop: { proof: await proof(token, {}, {}, leaky), method: 'POST', url: URL_ } }));
    expect([err.code, err.message]).toEqual(['invalid_dpop_proof', 'DPoP proof jwk is not a public key']);
  });

  it('rejects a symmetric (HS256) proof', async () => {
    const token = await boundToken();
    const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
    const hs = await new SignJWT({ jti: 'p', htm: 'POST', htu: URL_, iat: NOW_S })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: client.jwk })
      .sign(secret);
    const err = await refusal(verifier().verify(token, { dpop: { proof: hs, method: 'POST', url: URL_ } }));
    expect([err.code, err.message]).toEqual(['invalid_dpop_proof', 'DPoP proof algorithm not allowed']);
  });
});
