import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { post } from '../support/broker.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import { revokeGrants } from '../../src/grants/revocation.service.js';
import { expiryLag, grantsEnded } from '../../src/grants/grant.metrics.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';
import { testConfig } from '../support/fixtures.js';

let t: Lifecycle;
beforeAll(async () => {
  t = await startLifecycleBroker();
});
afterAll(async () => t.close());

const now = () => t.broker.clock.now();

describe('expiry and completion', () => {
  it('expires a grant past exp once, with one event, and records how late the sweep was', async () => {
    const g = await t.mintDeploy(60);
    expect((await expireGrants(t.broker.deps, now())).processed).toBe(0);
    const before = expiryLag.snapshot();
    t.broker.clock.advance(63);
    const r = await expireGrants(t.broker.deps, now());
    expect(r.processed).toBeGreaterThanOrEqual(1);
    expect(await t.grant(g.id)).toMatchObject({ status: 'expired', ended_by: 'system:expiry' });
    expect(await t.eventsFor(g.id)).toBe(1);
    expect(expiryLag.snapshot().count).toBeGreaterThan(before.count);
    expect(expiryLag.snapshot().max).toBeGreaterThanOrEqual(3);
    expect((await expireGrants(t.broker.deps, now())).processed).toBe(0);
    expect(await t.eventsFor(g.id)).toBe(1);
  });

  it('takes the clock per batch: a later batch records a later end and a larger lag', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await t.mintDeploy(60)).id);
    t.broker.clock.advance(61);
    const at = now();
    // A clock that moves one second per read stands in for batches that each take a second.
    let reads = 0;
    const slow = { now: () => new Date(at.getTime() + 1000 * reads++) };
    const before = expiryLag.snapshot();
    expect((await expireGrants({ db: t.broker.deps.db, clock: slow }, at, 1)).processed).toBe(3);
    const rows = await t.broker.database.db.selectFrom('grants').select(['id', 'ended_at']).where('id', 'in', ids).orderBy('ended_at').execute();
    expect(rows.map((r) => r.ended_at!.getTime() - at.getTime())).toEqual([1000, 2000, 3000]);
    const lag = expiryLag.snapshot();
    expect(lag.count - before.count).toBe(3);
    // Lags of 2, 3 and 4 s (each grant expired 1 s before `at`); the first batch alone would say 2, 2, 2.
    expect(lag.sum - before.sum).toBeCloseTo(9, 1);
  });

  it('completes a grant once, with one event', async () => {
    const g = await t.mintDeploy();
    const url = `${t.broker.url}/v1/grants/${g.id}/complete`;
    expect((await post(url, {}, { authorization: `Bearer ${g.token}` })).body.status).toBe('completed');
    expect((await post(url, {}, { authorization: `Bearer ${g.token}` })).body.status).toBe('completed');
    expect(await t.eventsFor(g.id)).toBe(1);
    expect(grantsEnded.get({ status: 'completed', initiating_entity: 'user' })).toBeGreaterThanOrEqual(1);
  });
});

describe('admin revocation', () => {
  it('revokes one grant with a reason and the actor; a second revocation changes nothing', async () => {
    const g = await t.mintDeploy();
    const first = await t.admin(`/grants/${g.id}/revoke`, { reason: 'incident 7' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ grant_id: g.id, status: 'revoked', ended_by: 'admin:bootstrap', changed: true, revoked: [g.id] });
    const second = await t.admin(`/grants/${g.id}/revoke`, { reason: 'again' });
    expect(second.body).toMatchObject({ status: 'revoked', changed: false, revoked: [] });
    expect(await t.grant(g.id)).toMatchObject({ end_reason: 'incident 7' });
    expect(await t.eventsFor(g.id)).toBe(1);
    expect((await t.admin(`/grants/${randomUUID()}/revoke`, { reason: 'x' })).status).toBe(404);
    expect((await t.admin(`/grants/${g.id}/revoke`, {})).status).toBe(400);
    const noKey = await post(`${t.broker.url}/v1/admin/grants/${g.id}/revoke`, { reason: 'x' }, { authorization: `Bearer ${g.token}` });
    expect(noKey.status).toBe(401);
  });

  it('revokes delegated children (and theirs) with the parent', async () => {
    const parent = await t.mintDeploy();
    const child = await insertChild(parent.id);
    const grandchild = await insertChild(child);
    const res = await t.admin(`/grants/${parent.id}/revoke`, { reason: 'compromised agent' });
    expect(res.body.revoked.sort()).toEqual([parent.id, child, grandchild].sort());
    expect(await t.grant(grandchild)).toMatchObject({ status: 'revoked', end_reason: 'parent grant ended: compromised agent' });
    for (const id of [parent.id, child, grandchild]) expect(await t.eventsFor(id)).toBe(1);
  });

  it('overlapping cascades running at once end each grant once, without a deadlock surfacing', async () => {
    // A tree of 1 + 4 + 16 grants; ten revocations pick overlapping subtrees and race.
    const root = await t.mintDeploy();
    const level1 = await Promise.all([1, 2, 3, 4].map(() => insertChild(root.id)));
    const level2 = (await Promise.all(level1.map((c) => Promise.all([1, 2, 3, 4].map(() => insertChild(c)))))).flat();
    const all = [root.id, ...level1, ...level2];
    const picks = Array.from({ length: 10 }, (_, i) => [all[(i * 7) % all.length]!, all[(i * 3 + 5) % all.length]!, ...(i % 3 === 0 ? [root.id] : [])]);
    const results = await Promise.all(picks.map((ids) => revokeGrants(t.broker.deps.db, { grantIds: ids }, { actor: 'admin:test', reason: 'race' }, now())));
    const ended = results.flat().map((g) => g.id);
    expect(ended.sort()).toEqual([...all].sort());
    for (const id of all) expect(await t.eventsFor(id)).toBe(1);
  });

  it('a cascade Postgres aborts to break a deadlock runs again and ends the tree once', async () => {
    const parent = await t.mintDeploy();
    const child = await insertChild(parent.id);
    // Another session holds the child; the cascade locks the parent, then waits for the child.
    const other = new pg.Client({ connectionString: t.broker.database.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select id from grants where id = $1 for update', [child]);
      const cascade = revokeGrants(t.broker.deps.db, { grantIds: [parent.id] }, { actor: 'admin:test', reason: 'deadlock' }, now());
      await waitForLockWaiters(1);
      // Now the other session wants the parent: a cycle. The cascade waited first, so it is the victim.
      const otherUpdate = other.query('update grants set use_count = use_count where id = $1', [parent.id]);
      await otherUpdate;
      await other.query('commit');
      expect((await cascade).map((g) => g.id).sort()).toEqual([parent.id, child].sort());
    } finally {
      await other.end();
    }
    for (const id of [parent.id, child]) expect(await t.eventsFor(id)).toBe(1);
  });

  it('bulk-revokes by task, by issuer and by workload, leaving the others', async () => {
    const deploy = await t.mintDeploy();
    const refund = await t.mintRefund();
    expect((await t.admin('/revocations', { task: 'refund-payment', reason: 'payments incident' })).body.revoked).toBeGreaterThanOrEqual(1);
    expect((await t.grant(refund.id)).status).toBe('revoked');
    expect((await t.grant(deploy.id)).status).toBe('active');
    expect((await t.admin('/revocations', { issuer: 'ci', reason: 'CI issuer compromised' })).body.revoked).toBeGreaterThanOrEqual(1);
    expect((await t.grant(deploy.id)).status).toBe('revoked');
    const again = await t.mintDeploy();
    expect((await t.admin('/revocations', { workload_id: 'api-deploy', reason: 'r' })).body.revoked).toBe(1);
    expect((await t.grant(again.id)).status).toBe('revoked');
    expect((await t.admin('/revocations', { workload_id: 'api-deploy', task: 'x', reason: 'r' })).status).toBe(400);
  });

  it('kill switch: revokes every active grant', async () => {
    const a = await t.mintDeploy();
    const b = await t.mintRefund();
    const res = await t.admin('/revocations', { all: true, reason: 'kill switch drill' });
    expect(res.body.revoked).toBeGreaterThanOrEqual(2);
    for (const id of [a.id, b.id]) expect(await t.grant(id)).toMatchObject({ status: 'revoked', ended_by: 'admin:bootstrap' });
    expect(await activeCount()).toBe(0);
  });

  it('suspends a workload: revokes its grants and blocks new ones', async () => {
    const g = await t.mintDeploy();
    const res = await t.admin('/workloads/api-deploy/suspend', { reason: 'leaked runner' });
    expect(res.body).toMatchObject({ id: 'api-deploy', status: 'suspended', revoked_grants: 1 });
    expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', end_reason: 'leaked runner' });
    const mint = await post(`${t.broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await t.ci.token()}` });
    expect(mint.status).toBe(401);
    // Suspending twice changes nothing: 409 names the current status, and no grant is touched.
    expect((await t.admin('/workloads/api-deploy/suspend', { reason: 'again' })).body).toMatchObject({ status: 'suspended' });
    expect((await t.admin('/workloads/nobody/suspend', { reason: 'x' })).status).toBe(404);
    await t.broker.database.db.updateTable('workloads').set({ status: 'active', status_reason: null }).where('id', '=', 'api-deploy').execute();
    await sql`update registry_epoch set epoch = epoch + 1`.execute(t.broker.database.db);
    await t.broker.deps.registry.refreshIfChanged();
  });
});

describe('configuration versions end the grants they take away', () => {
  it('retiring or suspending a workload, or deleting a task or an issuer, revokes their active grants', async () => {
    const doc = testConfig(t.ci, t.agent.jwk);
    const apply = async (d: object) => expect((await t.admin('/config', d)).status).toBe(201);
    const withWorkload = (status: string) => ({ ...doc, workloads: doc.workloads.map((w) => (w.id === 'api-deploy' ? { ...w, status } : w)) });

    for (const status of ['retired', 'suspended']) {
      const g = await t.mintDeploy();
      await apply(withWorkload(status));
      expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', ended_by: 'admin:bootstrap', end_reason: `workload ${status}` });
      expect(await t.eventsFor(g.id)).toBe(1);
      await apply(doc);
    }

    const refund = await t.mintRefund();
    const deploy = await t.mintDeploy();
    const child = await insertChild(refund.id);
    await apply({ ...doc, tasks: doc.tasks.filter((k) => k.name !== 'refund-payment') });
    expect(await t.grant(refund.id)).toMatchObject({ status: 'revoked', end_reason: 'task removed' });
    expect(await t.grant(child)).toMatchObject({ status: 'revoked', end_reason: 'task removed' });
    expect(await t.eventsFor(child)).toBe(1);
    expect((await t.grant(deploy.id)).status).toBe('active');
    await apply(doc);

    // The same workloads, now proven by another issuer: a grant proven by the deleted one ends.
    const moved = { ...doc, issuers: doc.issuers.map((i) => ({ ...i, id: 'ci-2' })), workloads: doc.workloads.map((w) => (w.bindings ? { ...w, bindings: w.bindings.map((b) => ({ ...b, issuer: 'ci-2' })) } : w)) };
    const agentGrant = await t.mintRefund();
    await apply(moved);
    expect(await t.grant(deploy.id)).toMatchObject({ status: 'revoked', end_reason: 'issuer removed' });
    expect((await t.grant(agentGrant.id)).status).toBe('active');
    await apply(doc);
  });
});

describe('POST /oauth2/revoke (RFC 7009)', () => {
  it('lets the holder revoke its token, and answers 200 for anything else', async () => {
    const g = await t.mintDeploy();
    const revoke = (token: string) => post(`${t.broker.url}/oauth2/revoke`, { token, token_type_hint: 'access_token' }, {}, true);
    expect((await revoke(g.token)).status).toBe(200);
    expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', ended_by: 'workload:api-deploy' });
    expect((await revoke(g.token)).status).toBe(200);
    expect(await t.eventsFor(g.id)).toBe(1);
    expect((await revoke('not-a-token')).status).toBe(200);
    const missing = await post(`${t.broker.url}/oauth2/revoke`, {}, {}, true);
    expect(missing.body.error).toBe('invalid_request');
  });
});

describe('concurrent revocation and expiry', () => {
  it('ends each grant once, in exactly one final state, with one event and one audit event', async () => {
    // Grants of earlier tests that would expire by then are swept now, so the race counts only these.
    await expireGrants(t.broker.deps, new Date(now().getTime() + 61_000));
    const ids = await Promise.all(Array.from({ length: 30 }, () => t.mintDeploy(60).then((g) => g.id)));
    t.broker.clock.advance(61);
    const at = now();
    const [expiredA, revokedA, expiredB, revokedB] = await Promise.all([
      expireGrants(t.broker.deps, at),
      revokeGrants(t.broker.deps.db, { workloadId: 'api-deploy' }, { actor: 'admin:test', reason: 'race' }, at),
      expireGrants(t.broker.deps, at),
      revokeGrants(t.broker.deps.db, { grantIds: ids }, { actor: 'admin:test', reason: 'race' }, at),
    ]);
    const final = await t.broker.database.db.selectFrom('grants').select(['id', 'status']).where('id', 'in', ids).execute();
    const inState = (status: string) => final.filter((g) => g.status === status).map((g) => g.id).sort();
    const revokedHere = [...revokedA, ...revokedB].map((g) => g.id).filter((id) => ids.includes(id)).sort();
    expect(inState('expired').length + inState('revoked').length).toBe(30);
    expect(expiredA.processed + expiredB.processed).toBe(inState('expired').length);
    // Each revoked grant was changed by exactly one of the two revocations.
    expect(revokedHere).toEqual(inState('revoked'));
    await t.broker.deps.audit.flush();
    await t.broker.deps.audit.flush();
    for (const g of final) {
      const events = await t.broker.database.db.selectFrom('security_events').select('data').where('grant_id', '=', g.id).execute();
      expect(events.map((e) => (e.data as { status: string }).status)).toEqual([g.status]);
      const audit = await t.broker.database.db.selectFrom('audit_events').select('action').where('target_id', '=', g.id).where('action', 'like', 'grant.%').where('action', '<>', 'grant.minted').execute();
      expect(audit.map((a) => a.action)).toEqual([`grant.${g.status}`]);
    }
  });
});

async function insertChild(parentId: string): Promise<string> {
  const id = randomUUID();
  await sql`
    insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, parent_id, kid, token_sha256, identity)
    select ${id}, workload_id, task, params, scopes, audience, issued_at, expires_at, 'active', ${parentId}, kid, md5(${id}), identity
    from grants where id = ${parentId}`.execute(t.broker.database.db);
  return id;
}

async function activeCount(): Promise<number> {
  const r = await t.broker.database.db.selectFrom('grants').select((eb) => eb.fn.countAll<string>().as('n')).where('status', '=', 'active').executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Waits (polling Postgres, not the clock) until this many sessions of the test database wait for a lock. */
// From pg_locks: the test's own connection is the schema owner, and pg_stat_activity hides another
// role's wait events from anyone but a superuser (its pid and database it shows to all).
async function waitForLockWaiters(n: number): Promise<void> {
  for (;;) {
    const { rows } = await sql<{ n: string }>`
      select count(distinct l.pid) as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database()`.execute(t.broker.database.db);
    if (Number(rows[0]!.n) >= n) return;
    await new Promise((r) => setImmediate(r));
  }
}
