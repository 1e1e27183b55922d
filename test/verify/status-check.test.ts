import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createVerifier, type VerifierOptions } from '../../src/verify/verifier.js';
import { VerificationError } from '../../src/verify/errors.js';
import { FakeBroker, NOW, NOW_S, makeKey, type SigningKey } from './fake-broker.js';

let broker: FakeBroker;
let key: SigningKey;
let path: string;
let pathCounter = 0;

beforeAll(async () => {
  broker = await new FakeBroker().start();
  key = await makeKey('k1');
  broker.published = [key];
});
afterAll(() => broker.stop());
beforeEach(() => {
  // A fresh list per test keeps one test's cache from answering for the next.
  path = `/v1/status/${++pathCounter}`;
  broker.requests.status = 0;
});

function verifier(options: Partial<VerifierOptions> = {}) {
  return createVerifier({ issuer: broker.issuer, audience: 'payments', now: () => NOW, ...options });
}

function tokenAt(idx: number, uri = broker.statusUri(path)): Promise<string> {
  return broker.token(key, { status: { status_list: { idx, uri } } });
}

async function refusal(promise: Promise<unknown>): Promise<VerificationError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(VerificationError);
  return err as VerificationError;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return (await refusal(promise)).code;
}

describe('verify: token status list', () => {
  it('accepts status 0 and rejects 1 (revoked) and 2 (suspended)', async () => {
    await broker.publishStatusList(key, path, [0, 1, 2, 0], { bits: 2 });
    const v = verifier();
    await expect(v.verify(await tokenAt(0))).resolves.toBeTruthy();
    expect(await codeOf(v.verify(await tokenAt(1)))).toBe('token_revoked');
    await expect(v.verify(await tokenAt(2))).rejects.toThrow('token suspended');
    expect(broker.statusAccept[broker.statusAccept.length - 1]).toBe('application/statuslist+jwt');
  });

  it('fails closed with status_unavailable when the list cannot be fetched', async () => {
    broker.failStatusList(path);
    expect(await codeOf(verifier().verify(await tokenAt(0)))).toBe('status_unavailable');
  });

  it('skips the check when checkStatus is false', async () => {
    broker.failStatusList(path);
    await expect(verifier({ checkStatus: false }).verify(await tokenAt(0))).resolves.toBeTruthy();
  });

  it('accepts a token without a status claim without fetching', async () => {
    await expect(verifier().verify(await broker.token(key))).resolves.toBeTruthy();
    expect(broker.requests.status).toBe(0);
  });

  it('fetches the list once for a burst of verifications', async () => {
    await broker.publishStatusList(key, path, [0, 0, 0, 0]);
    const v = verifier();
    const token = await tokenAt(3);
    await Promise.all(Array.from({ length: 30 }, () => v.verify(token)));
    expect(broker.requests.status).toBe(1);
  });

  it('caches for min(ttl, statusListCacheSeconds) by the verifier clock, then sees a revocation', async () => {
    await broker.publishStatusList(key, path, [0, 0], { ttl: 120 });
    let now = NOW;
    const v = verifier({ now: () => now, statusListCacheSeconds: 600 });
    const token = await tokenAt(1);
    await v.verify(token);
    await broker.publishStatusList(key, path, [0, 1], { ttl: 120 });
    now = new Date(NOW.getTime() + 119_000);
    await expect(v.verify(token)).resolves.toBeTruthy();
    now = new Date(NOW.getTime() + 120_000);
    expect(await codeOf(v.verify(token))).toBe('token_revoked');
    expect(broker.requests.status).toBe(2);
  });

  it('never trusts a cached list beyond statusListCacheSeconds, whatever its ttl', async () => {
    await broker.publishStatusList(key, path, [0], { ttl: 3600 });
    let now = NOW;
    const v = verifier({ now: () => now, statusListCacheSeconds: 10 });
    const token = await tokenAt(0);
    await v.verify(token);
    broker.failStatusList(path);
    now = new Date(NOW.getTime() + 10_000);
    expect(await codeOf(v.verify(token))).toBe('status_unavailable');
  });

  it.each([
    ['a wrong typ', { typ: 'JWT' }, /"typ"/],
    ['a sub other than its uri', { sub: 'https://elsewhere.example/status/1' }, /unexpected "sub" claim value/],
    ['an expired list', { exp: NOW_S - 60 }, /"exp" claim timestamp check failed/],
  ])('refuses a status list token with %s', async (_name, opts, cause) => {
    await broker.publishStatusList(key, path, [0], opts);
    const err = await refusal(verifier().verify(await tokenAt(0)));
    expect(err.code).toBe('status_unavailable');
    expect(String(err.cause)).toMatch(cause);
  });

  it('refuses a status list token signed by a key outside the issuer JWKS', async () => {
    await broker.publishStatusList(await makeKey('k1'), path, [0]);
    const err = await refusal(verifier().verify(await tokenAt(0)));
    expect(err.code).toBe('status_unavailable');
    expect(String(err.cause)).toMatch(/signature verification failed/);
  });

  it('treats an index outside the list as status_unavailable', async () => {
    await broker.publishStatusList(key, path, [0]);
    expect(await codeOf(verifier().verify(await tokenAt(8)))).toBe('status_unavailable');
  });

  it('refetches once, for all waiting verifications, when a token index is past the end of the cached list', async () => {
    // One byte: entries 0-7. The broker then mints past it and publishes a longer list.
    await broker.publishStatusList(key, path, [0]);
    const v = verifier();
    await v.verify(await tokenAt(0));
    await broker.publishStatusList(key, path, [...Array(15).fill(0), 1, 0]);
    const [fresh, revoked] = [await tokenAt(16), await tokenAt(15)];
    await Promise.all(Array.from({ length: 10 }, () => v.verify(fresh)));
    expect(broker.requests.status).toBe(2);
    expect(await codeOf(v.verify(revoked))).toBe('token_revoked');
    // Still outside the list just fetched for it: fail closed, no third fetch before the ttl.
    expect(await codeOf(v.verify(await tokenAt(64)))).toBe('status_unavailable');
    expect(broker.requests.status).toBe(2);
  });
});
