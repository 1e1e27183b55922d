import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { createVerifier } from '../../src/verify/index.js';
import type { RotationTiming } from '../../src/keys/rotation.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';

let t: Lifecycle;
beforeAll(async () => {
  t = await startLifecycleBroker();
});
afterAll(async () => t.close());
afterEach(() => {
  vi.useRealTimers();
});

const jwksKids = async () => ((await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

describe('signing key rotation during traffic', () => {
  it('a verifier on jose default JWKS caching sees zero failures across two rotations', async () => {
    // jose times its JWKS cache with Date.now(): fake only Date, and move it with the broker clock.
    vi.useFakeTimers({ toFake: ['Date'] });
    const move = (seconds: number) => {
      t.broker.clock.advance(seconds);
      vi.setSystemTime(t.broker.clock.now());
    };
    move(0);
    const timing: RotationTiming = { intervalSeconds: 2 * 3600, leadSeconds: 3600, graceSeconds: 600 };
    let jwksFetches = 0;
    const verifier = createVerifier({
      issuer: t.broker.url,
      audience: 'https://deploy.example',
      now: () => t.broker.clock.now(),
      fetch: (input, init) => {
        if (String(input).endsWith('/jwks.json')) jwksFetches++;
        return fetch(input, init);
      },
    });
    const live: Array<{ token: string; exp: number }> = [];
    const kids = new Set<string>();
    let verified = 0;
    const failures: string[] = [];
    let rotations = 0;
    // Five simulated hours, one minute per tick: mint, verify every unexpired token, run the rotation job.
    for (let tick = 0; tick < 300; tick++) {
      const g = await t.mintDeploy(300);
      kids.add(decodeProtectedHeader(g.token).kid!);
      live.push({ token: g.token, exp: t.broker.clock.now().getTime() + 300_000 });
      for (const { token, exp } of live) {
        if (exp <= t.broker.clock.now().getTime()) continue;
        await verifier.verify(token).then(
          () => verified++,
          (e: Error) => failures.push(`${tick}: ${e.message}`),
        );
      }
      if ((await t.broker.deps.keys.rotate(t.broker.clock.now(), timing)) === 'rotated') rotations++;
      move(60);
    }
    console.log(`rotation: ${rotations} rotations, ${kids.size} signing kids, ${verified} verifications, ${failures.length} failures, ${jwksFetches} JWKS fetches`);
    expect(failures).toEqual([]);
    expect(rotations).toBe(2);
    expect(kids.size).toBe(3);
    expect(jwksFetches).toBeGreaterThan(1);
  }, 120_000);

  it('keeps a retired key in JWKS until its last token has expired, then drops it', async () => {
    const timing: RotationTiming = { intervalSeconds: 60, leadSeconds: 60, graceSeconds: 600 };
    const g = await t.mintDeploy(900);
    const kid = decodeProtectedHeader(g.token).kid!;
    t.broker.clock.advance(3600);
    while ((await t.broker.deps.keys.rotate(t.broker.clock.now(), timing)) !== 'rotated') t.broker.clock.advance(60);
    expect(t.broker.deps.keys.currentKid).not.toBe(kid);
    expect(await jwksKids()).toContain(kid);
    t.broker.clock.advance(600 + 60);
    await t.broker.deps.keys.refresh();
    expect(await jwksKids()).not.toContain(kid);
  });
});

describe('emergency key revocation', () => {
  it('removes the key from JWKS now, revokes every grant it signed, and signs with another key', async () => {
    const a = await t.mintDeploy();
    const b = await t.mintRefund();
    const kid = t.broker.deps.keys.currentKid;
    const res = await t.admin(`/signing-keys/${kid}/revoke`, { reason: 'HSM export suspected' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kid, changed: true });
    expect(res.body.grants_revoked).toBeGreaterThanOrEqual(2);
    expect(res.body.current_kid).not.toBe(kid);
    expect(await jwksKids()).not.toContain(kid);
    for (const id of [a.id, b.id]) expect(await t.grant(id)).toMatchObject({ status: 'revoked', end_reason: 'signing key revoked: HSM export suspected' });
    const fresh = await t.mintDeploy();
    expect(decodeProtectedHeader(fresh.token).kid).toBe(res.body.current_kid);
    expect((await t.admin(`/signing-keys/${kid}/revoke`, { reason: 'again' })).body).toMatchObject({ changed: false, grants_revoked: 0 });
    expect((await t.admin('/signing-keys/unknown/revoke', { reason: 'x' })).status).toBe(404);
  });
});
