import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SignJWT, base64url } from 'jose';
import { createVerifier, type VerifierOptions } from '../../src/verify/verifier.js';
import { VerificationError } from '../../src/verify/errors.js';
import { FakeBroker, NOW, NOW_S, makeKey, type SigningKey } from './fake-broker.js';

let broker: FakeBroker;
let key: SigningKey;

beforeAll(async () => {
  broker = await new FakeBroker().start();
});
afterAll(() => broker.stop());
beforeEach(async () => {
  key = await makeKey('k1');
  broker.published = [key];
  broker.requests.jwks = 0;
});

function verifier(options: Partial<VerifierOptions> = {}) {
  return createVerifier({ issuer: broker.issuer, audience: 'payments', now: () => NOW, ...options });
}

async function refusal(promise: Promise<unknown>): Promise<VerificationError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(VerificationError);
  return err as VerificationError;
}

describe('verify: signature and claims', () => {
  it('accepts a valid token and returns its claims', async () => {
    const claims = await verifier().verify(await broker.token(key), { scope: 'payments:refund', task: 'refund-payment' });
    expect(claims).toMatchObject({ sub: 'wl_agent_1', jti: 'grt_01', task: 'refund-payment', client_id: 'wl_agent_1' });
    expect(claims.authorization_details[0]).toEqual({ type: 'tessera_task', task: 'refund-payment', params: { amount: 50 } });
  });

  it('accepts any one of several audiences', async () => {
    await expect(verifier({ audience: ['billing', 'payments'] }).verify(await broker.token(key))).resolves.toBeTruthy();
  });

  it.each([
    ['wrong audience', { aud: 'billing' }, 'token claim "aud" is invalid'],
    ['wrong issuer', { iss: 'https://evil.example' }, 'token claim "iss" is invalid'],
    ['missing task', { task: undefined }, 'token claim "task" is invalid'],
    ['no tessera_task detail', { authorization_details: [] }, 'malformed claims: authorization_details (no tessera_task entry for the task)'],
    ['non-string scope', { scope: ['a'] }, 'malformed claims: scope'],
    ['bad status claim', { status: { status_list: { idx: -1, uri: 'x' } } }, 'malformed claims: status'],
  ])('rejects a token with %s', async (_name, overrides, message) => {
    const err = await refusal(verifier().verify(await broker.token(key, overrides)));
    expect(err.code).toBe('invalid_token');
    expect(err.message).toBe(message);
  });

  it('rejects an expired token past the clock tolerance, by the frozen clock', async () => {
    const token = await broker.token(key);
    const at = (s: number) => verifier({ now: () => new Date((NOW_S + s) * 1000) });
    await expect(at(304).verify(token)).resolves.toBeTruthy();
    const err = await refusal(at(306).verify(token));
    expect([err.code, err.message]).toEqual(['invalid_token', 'token expired']);
  });

  it('rejects a token whose typ is not at+jwt', async () => {
    const err = await refusal(verifier().verify(await broker.token(key, {}, { typ: 'JWT' })));
    expect([err.code, err.message]).toEqual(['invalid_token', 'token claim "typ" is invalid']);
  });

  it('rejects alg none and HS256', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    const unsecured = `${header}.${base64url.encode(JSON.stringify(broker.claims()))}.`;
    expect((await refusal(verifier().verify(unsecured))).code).toBe('invalid_token');
    const hs = await new SignJWT(broker.claims())
      .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' })
      .sign(new TextEncoder().encode('a-shared-secret-someone-guessed-xx'));
    const err = await refusal(verifier().verify(hs));
    expect([err.code, err.message]).toEqual(['invalid_token', 'token algorithm not allowed']);
  });

  it('rejects a token signed by a key the issuer does not publish', async () => {
    const stranger = await makeKey('k1');
    expect((await refusal(verifier().verify(await broker.token(stranger)))).message).toBe('token signature invalid');
  });

  it('verifies with an inline JWKS without fetching anything', async () => {
    const v = verifier({ jwks: { keys: [key.publicJwk] }, jwksUri: undefined });
    await expect(v.verify(await broker.token(key))).resolves.toBeTruthy();
    expect(broker.requests.jwks).toBe(0);
  });

  it('refuses contradictory configuration at construction, naming the field', () => {
    expect(() => verifier({ jwks: { keys: [] }, jwksUri: 'https://x.example/jwks' })).toThrow(/"jwks"/);
    expect(() => verifier({ issuer: 'not a url' })).toThrow(/"issuer"/);
    expect(() => verifier({ audience: [] })).toThrow(/"audience"/);
  });
});

describe('verify: scope and task', () => {
  it('requires every requested scope', async () => {
    const token = await broker.token(key);
    await expect(verifier().verify(token, { scope: ['payments:refund', 'payments:read'] })).resolves.toBeTruthy();
    const err = await refusal(verifier().verify(token, { scope: 'payments:refund payments:admin' }));
    expect([err.code, err.message]).toEqual(['insufficient_scope', 'missing scope: payments:admin']);
  });

  it('rejects a token for another task', async () => {
    const err = await refusal(verifier().verify(await broker.token(key), { task: 'deploy-prod' }));
    expect(err.code).toBe('wrong_task');
  });
});

describe('verify: JWKS caching', () => {
  // jose times its JWKS cooldown with Date.now(), not the verifier clock, so only Date is faked.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW);
  });
  afterEach(() => vi.useRealTimers());

  it('fetches once for a burst of 50 verifications against a cold cache', async () => {
    const v = verifier();
    const token = await broker.token(key);
    await Promise.all(Array.from({ length: 50 }, () => v.verify(token)));
    expect(broker.requests.jwks).toBe(1);
  });

  it('fetches exactly once for a burst of 50 tokens with a rotated-in kid', async () => {
    const v = verifier();
    await v.verify(await broker.token(key));
    const next = await makeKey('k2');
    broker.published = [key, next];
    vi.setSystemTime(NOW.getTime() + 31_000);
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => broker.token(next, { jti: `grt_${i}` })));
    const results = await Promise.all(tokens.map((t) => v.verify(t)));
    expect(results).toHaveLength(50);
    expect(broker.requests.jwks).toBe(2);
  });

  it('does not refetch for an unknown kid within the cooldown', async () => {
    const v = verifier({ jwksCooldownSeconds: 30 });
    await v.verify(await broker.token(key));
    const next = await makeKey('k2');
    broker.published = [key, next];
    const token = await broker.token(next);
    vi.setSystemTime(NOW.getTime() + 29_000);
    expect((await refusal(v.verify(token))).message).toBe('no key matches the token kid');
    expect(broker.requests.jwks).toBe(1);
    vi.setSystemTime(NOW.getTime() + 31_000);
    await expect(v.verify(token)).resolves.toBeTruthy();
    expect(broker.requests.jwks).toBe(2);
  });
});
