import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { post, startTestBroker } from '../support/broker.js';
import { testConfig } from '../support/fixtures.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
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

/** Seals what is staged: a second flush, in case the first joined one the sealer had already begun. */
const sealAudit = async () => {
  await t.broker.deps.audit.flush();
  await t.broker.deps.audit.flush();
};
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

  it('keeps a retired key in JWKS until its last token has expired (plus grace), then drops it', async () => {
    const timing: RotationTiming = { intervalSeconds: 60, leadSeconds: 60, graceSeconds: 600 };
    const kid = t.broker.deps.keys.currentKid;
    // Mint right before each rotation attempt: the last token the key signs is minted just before it retires.
    let last: { id: string; token: string };
    for (;;) {
      last = await t.mintDeploy(900);
      if ((await t.broker.deps.keys.rotate(t.broker.clock.now(), timing)) === 'rotated') break;
      t.broker.clock.advance(60);
    }
    expect(decodeProtectedHeader(last.token).kid).toBe(kid);
    expect(t.broker.deps.keys.currentKid).not.toBe(kid);
    const { expires_at } = await t.broker.database.db.selectFrom('grants').select('expires_at').where('id', '=', last.id).executeTakeFirstOrThrow();
    t.broker.clock.set(expires_at.getTime() + (600 - 1) * 1000);
    await t.broker.deps.keys.refresh();
    expect(await jwksKids()).toContain(kid);
    t.broker.clock.advance(2);
    await t.broker.deps.keys.refresh();
    expect(await jwksKids()).not.toContain(kid);
    await sealAudit();
    const retired = await t.broker.database.db.selectFrom('audit_events').select(['actor', 'data']).where('target_id', '=', kid).where('action', '=', 'signing_key.retired').executeTakeFirstOrThrow();
    expect(retired.actor).toBe('system:rotation');
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
    await sealAudit();
    const events = await t.broker.database.db.selectFrom('audit_events').select(['actor', 'action', 'target_id', 'data']).where('target_type', '=', 'signing_key').where('target_id', 'in', [kid, res.body.current_kid]).orderBy('seq').execute();
    expect(events.filter((e) => e.action === 'signing_key.revoked')).toEqual([{ actor: 'admin:bootstrap', action: 'signing_key.revoked', target_id: kid, data: { reason: 'HSM export suspected' } }]);
    expect(events.filter((e) => e.action === 'signing_key.current').at(-1)).toMatchObject({ target_id: res.body.current_kid, data: { reason: `replaces revoked key ${kid}` } });
  });

  it('a replica that has not reloaded its keys cannot mint with a revoked key, and a straggler grant is swept', async () => {
    // A second replica on the same database, with the same KEK, that will not reload keys by itself.
    const replica = await startTestBroker(testConfig(t.ci, t.agent.jwk), { database: t.broker.database, kek: t.broker.deps.kek, clock: t.broker.clock, scheduler: false });
    try {
      const kid = replica.deps.keys.currentKid;
      expect(t.broker.deps.keys.currentKid).toBe(kid);
      expect((await t.admin(`/signing-keys/${kid}/revoke`, { reason: 'leak' })).status).toBe(200);
      expect(replica.deps.keys.currentKid).toBe(kid);
      const res = await post(`${replica.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await t.ci.token()}` });
      expect(res.status).toBe(201);
      // The insert refused the revoked kid; the replica reloaded its keys and signed with the new one.
      expect(decodeProtectedHeader(res.body.access_token).kid).toBe(t.broker.deps.keys.currentKid);
      expect(replica.deps.keys.currentKid).toBe(t.broker.deps.keys.currentKid);

      // A mint that committed between the key's revocation and the grant sweep: the expiry job ends it.
      const straggler = randomUUID();
      await sql`
        insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity)
        select ${straggler}, workload_id, task, params, scopes, audience, issued_at, expires_at, 'active', ${kid}, md5(${straggler}), identity
        from grants where id = ${res.body.grant_id}`.execute(t.broker.database.db);
      const run = await expireGrants(t.broker.deps, t.broker.clock.now());
      expect(run.detail).toMatchObject({ key_revoked: 1 });
      expect(await t.grant(straggler)).toMatchObject({ status: 'revoked', ended_by: 'system:key-revocation', end_reason: 'signing key revoked' });
      expect(await t.eventsFor(straggler)).toBe(1);
      expect((await expireGrants(t.broker.deps, t.broker.clock.now())).detail).toMatchObject({ key_revoked: 0 });
    } finally {
      await replica.stop();
    }
  });
});
