import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, post, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { STALE_JWKS_GRACE_MS } from '../../src/identity/remote-jwks.js';

const COOLDOWN_SECONDS = 30;
const MAX_AGE_SECONDS = 600;

// Two issuers, one per test, so each test starts from its own cold JWKS cache.
let broker: TestBroker;
let first: FakeIssuer;
let second: FakeIssuer;

beforeAll(async () => {
  const now = () => broker.clock.now();
  first = await startFakeIssuer({ now });
  second = await startFakeIssuer({ now });
  const issuer = (id: string, ci: FakeIssuer) => ({
    id,
    issuer: ci.url,
    jwks_uri: ci.jwksUri,
    audiences: ['tessera'],
    jwks_cooldown_seconds: COOLDOWN_SECONDS,
    jwks_max_age_seconds: MAX_AGE_SECONDS,
  });
  broker = await startTestBroker({
    issuers: [issuer('first', first), issuer('second', second)],
    workloads: [
      { id: 'first-ci', kind: 'ci', owner: 'ops', bindings: [{ issuer: 'first', claims: { repository: 'acme/api' } }] },
      { id: 'second-ci', kind: 'ci', owner: 'ops', bindings: [{ issuer: 'second', claims: { repository: 'acme/api' } }] },
    ],
    tasks: [{ name: 'read-logs', scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['first-ci', 'second-ci'] }],
  });
});
afterAll(async () => {
  await broker.stop();
  await first.close();
  await second.close();
});

const grant = async (token: string) => (await post(`${broker.url}/v1/grants`, { task: 'read-logs' }, { authorization: `Bearer ${token}` })).status;

describe('remote issuer JWKS cache', () => {
  it('spaces fetch attempts by the cooldown for unknown kids, also while the issuer fails', async () => {
    expect(await grant(await first.token())).toBe(201);
    expect(first.jwksFetches).toBe(1);

    // Within the cooldown of the last fetch, an unknown kid costs the issuer nothing.
    expect(await grant(await first.token({}, { kid: 'unknown' }))).toBe(401);
    expect(first.jwksFetches).toBe(1);

    broker.clock.advance(COOLDOWN_SECONDS);
    first.jwksDown = true;
    const unknown = await Promise.all(Array.from({ length: 5 }, () => first.token({}, { kid: 'unknown' })));
    expect(await Promise.all(unknown.map(grant))).toEqual(Array(5).fill(401));
    expect(first.jwksFetches).toBe(2);
    // The failed attempt starts a cooldown of its own: no fetch per request while the issuer errors.
    expect(await grant(await first.token({}, { kid: 'unknown' }))).toBe(401);
    expect(first.jwksFetches).toBe(2);
    expect(broker.logs.some((l) => l.msg === 'issuer JWKS fetch failed' && l.issuer === 'first' && /answered 503/.test(String(l.err)))).toBe(true);
    // Keys already cached keep verifying throughout.
    expect(await grant(await first.token())).toBe(201);

    broker.clock.advance(COOLDOWN_SECONDS);
    expect(await grant(await first.token({}, { kid: 'unknown' }))).toBe(401);
    expect(first.jwksFetches).toBe(3);
    first.jwksDown = false;
  });

  it('keeps verifying with the cached keys when a refresh past max age fails, until the grace period ends', async () => {
    expect(await grant(await second.token())).toBe(201);
    second.jwksDown = true;

    broker.clock.advance(MAX_AGE_SECONDS);
    expect(await grant(await second.token())).toBe(201);
    expect(second.jwksFetches).toBe(2);
    // Still stale, but the failed attempt is within its cooldown: served from cache without asking.
    expect(await grant(await second.token())).toBe(201);
    expect(second.jwksFetches).toBe(2);

    broker.clock.advance(STALE_JWKS_GRACE_MS / 1000 - MAX_AGE_SECONDS - 1);
    expect(await grant(await second.token())).toBe(201);
    broker.clock.advance(MAX_AGE_SECONDS + 1);
    expect(await grant(await second.token())).toBe(401);

    // The issuer is back: the next attempt after the cooldown refreshes and tokens verify again.
    second.jwksDown = false;
    broker.clock.advance(COOLDOWN_SECONDS);
    expect(await grant(await second.token())).toBe(201);
  });
});
