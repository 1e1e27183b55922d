import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig, type AgentKey } from './support/fixtures.js';
import { tamper, tessera as tesseraCli } from './audit/support.js';
import { scanDatabase, secretShapes } from './support/secret-scan.js';

let broker: TestBroker;
let ci: FakeIssuer;
let agent: AgentKey;
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  agent = await agentKey();
  broker = await startTestBroker(testConfig(ci, agent.jwk));
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

const mint = async () => post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });
const getJson = async (p: string) => {
  const res = await fetch(`${broker.url}${p}`, { headers: admin });
  return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const tessera = (args: string[]) => tesseraCli(broker.url, TEST_ADMIN_KEY, args);

describe('the decision trail', () => {
  it('reads one grant life as one chain: identity, decision, grant, completion', async () => {
    const minted = await mint();
    expect(minted.status).toBe(201);
    await post(`${broker.url}/v1/grants/${minted.body.grant_id}/complete`, {}, { authorization: `Bearer ${minted.body.access_token}` });
    const trail = await getJson(`/v1/admin/grants/${minted.body.grant_id}/trail`);
    expect(trail.status).toBe(200);
    expect(trail.body.identity).toMatchObject({ method: 'oidc', subject: 'repo:acme/api:environment:production' });
    expect(trail.body.decision).toMatchObject({ id: minted.body.decision_id, outcome: 'allow' });
    expect(trail.body.grant).toMatchObject({ id: minted.body.grant_id, status: 'completed', ended_by: 'workload:api-deploy' });
    expect(trail.body.ended).toMatchObject({ status: 'completed', reason: 'task completed' });
    expect(trail.body.events.map((e: { action: string }) => e.action)).toEqual(['decision.recorded', 'grant.minted', 'grant.completed']);
    const seqs = trail.body.events.map((e: { seq: string }) => Number(e.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect((await getJson('/v1/admin/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('chains a digest of the decision and grant rows, so an edit of either shows in the trail and in verify', async () => {
    const minted = await mint();
    const trailOf = () => getJson(`/v1/admin/grants/${minted.body.grant_id}/trail`);
    const intact = await trailOf();
    expect(intact.body.integrity).toEqual({ decision: 'intact', step_up_decision: null, grant: 'intact' });
    const [recorded, issued] = intact.body.events as Array<{ seq: string; action: string; data: Record<string, unknown> }>;
    expect(recorded).toMatchObject({ action: 'decision.recorded', data: { config_version: intact.body.decision.config_version, row_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(issued).toMatchObject({ action: 'grant.minted', data: { params: { service: 'api' }, row_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });

    // Someone with write access to the tables (not the audit log) rewrites what the trail serves.
    const owner = broker.database.db;
    const { signals } = await owner.selectFrom('decisions').select('signals').where('id', '=', minted.body.decision_id).executeTakeFirstOrThrow();
    await sql`update decisions set signals = jsonb_set(signals, '{identity,subject}', '"repo:acme/other"') where id = ${minted.body.decision_id}`.execute(owner);
    expect((await trailOf()).body.integrity).toEqual({ decision: 'edited', step_up_decision: null, grant: 'intact' });
    expect((await getJson('/v1/admin/audit/verify')).body).toMatchObject({ ok: false, broken_at: recorded!.seq, reason: 'row_edited' });
    await sql`update decisions set signals = ${JSON.stringify(signals)}::jsonb where id = ${minted.body.decision_id}`.execute(owner);

    await sql`update grants set params = '{"service":"worker"}' where id = ${minted.body.grant_id}`.execute(owner);
    expect((await trailOf()).body.integrity).toEqual({ decision: 'intact', step_up_decision: null, grant: 'edited' });
    expect((await getJson('/v1/admin/audit/verify')).body).toMatchObject({ ok: false, broken_at: issued!.seq, reason: 'row_edited' });
    await sql`update grants set params = '{"service":"api"}' where id = ${minted.body.grant_id}`.execute(owner);
    expect((await getJson('/v1/admin/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('audits authentication failures without the credential', async () => {
    const bad = await post(`${broker.url}/v1/grants`, { task: 'deploy-prod' }, { authorization: `Bearer ${await ci.token({ aud: 'wrong' })}` });
    const events = await getJson('/v1/admin/audit/events?limit=1000');
    const failure = events.body.items.find((e: { action: string; request_id: string }) => e.action === 'auth.failed' && e.request_id === bad.body.request_id);
    expect(failure).toMatchObject({ actor: 'anonymous', outcome: 'failure', data: { path: '/v1/grants' } });
    expect(secretShapes(JSON.stringify(failure))).toEqual([]);
  });

  it('returns no token when the audit event of a mint cannot be written', async () => {
    const before = await broker.database.db.selectFrom('grants').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    await sql`alter table audit_pending add constraint audit_down check (action <> 'grant.minted') not valid`.execute(broker.database.db);
    try {
      const res = await mint();
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(res.body.access_token).toBeUndefined();
      const after = await broker.database.db.selectFrom('grants').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      expect(after.n).toBe(before.n);
    } finally {
      await sql`alter table audit_pending drop constraint audit_down`.execute(broker.database.db);
    }
    expect((await mint()).status).toBe(201);
  });
});

describe('token uses reported by resource servers', () => {
  it('counts each use, enforces max uses, and shows the uses in the trail', async () => {
    const rs = (await post(`${broker.url}/v1/admin/resource-servers`, { name: 'deploy-api', audiences: ['https://deploy.example'] }, admin)).body as { client_id: string; client_secret: string };
    const basic = { authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` };
    const minted = await mint();
    const uses = `${broker.url}/v1/grants/${minted.body.grant_id}/uses`;
    expect((await post(uses, { tool: 'kubectl', target: 'deploy/api' }, { authorization: 'Basic bm9ib2R5Om5vdGhpbmc=' })).status).toBe(401);
    // The caller is authenticated before its body is read, and the report's own 8 KB limit holds.
    const raw = (body: string, headers: Record<string, string> = {}) => fetch(uses, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then((r) => r.status);
    expect(await raw('{bad')).toBe(401);
    expect(await raw(JSON.stringify({ tool: 'x'.repeat(70_000) }))).toBe(401);
    expect(await raw(JSON.stringify({ tool: 'x'.repeat(20_000) }), basic)).toBe(413);
    const first = await post(uses, { tool: 'kubectl', target: 'deploy/api', result: 'success' }, basic);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ use_count: 1, max_uses: null, status: 'active' });
    expect((await post(uses, { tool: 'kubectl', target: 'svc/api' }, basic)).body.use_count).toBe(2);
    expect((await post(uses, { tool: 'x', extra: 1 }, basic)).status).toBe(400);
    const trail = await getJson(`/v1/admin/grants/${minted.body.grant_id}/trail`);
    expect(trail.body.uses).toMatchObject([
      { actor: 'rs:deploy-api', via: 'report', tool: 'kubectl', target: 'deploy/api' },
      { actor: 'rs:deploy-api', via: 'report', tool: 'kubectl', target: 'svc/api' },
    ]);
    // A resource server for another audience cannot see this grant.
    const crm = (await post(`${broker.url}/v1/admin/resource-servers`, { name: 'crm', audiences: ['https://crm.example'] }, admin)).body as { client_id: string; client_secret: string };
    expect((await post(uses, {}, { authorization: `Basic ${Buffer.from(`${crm.client_id}:${crm.client_secret}`).toString('base64')}` })).status).toBe(404);
  });

  it('a single-use token is used up after one use, reported or introspected', async () => {
    const rs = (await post(`${broker.url}/v1/admin/resource-servers`, { name: 'payments' }, admin)).body as { client_id: string; client_secret: string };
    const basic = { authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` };
    const minted = await post(`${broker.url}/v1/grants`, { task: 'refund-payment', params: { amount: 5 } }, { authorization: `Bearer ${await agent.assertion(broker.url, {}, Math.floor(broker.clock.now().getTime() / 1000))}` });
    expect(minted.status).toBe(201);
    const used = await post(`${broker.url}/v1/grants/${minted.body.grant_id}/uses`, { tool: 'refund' }, basic);
    expect(used.body).toMatchObject({ use_count: 1, max_uses: 1, status: 'completed' });
    const again = await post(`${broker.url}/v1/grants/${minted.body.grant_id}/uses`, { tool: 'refund' }, basic);
    expect(again.status).toBe(409);
    const introspected = await post(`${broker.url}/oauth2/introspect`, { token: minted.body.access_token }, basic, true);
    expect(introspected.body).toEqual({ active: false });
  });
});

describe('tamper evidence through the API and the CLI', () => {
  it('reports the first broken link with its position, and exports JSON lines', async () => {
    for (let i = 0; i < 3; i++) await mint();
    const ok = await tessera(['audit', 'verify']);
    expect(ok.stdout).toMatch(/^audit chain intact: \d+ events verified/);
    expect(ok.code).toBe(0);

    const exported = await tessera(['audit', 'export', '--since', '2000-01-01T00:00:00Z']);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: string; hash: string; prev_hash: string });
    expect(lines.length).toBeGreaterThan(8);
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.prev_hash).toBe(lines[i - 1]!.hash);
    expect(exported.stderr).toMatch(/exported \d+ events/);

    const victim = lines[4]!.seq;
    await tamper(broker.database.db, sql`update audit_events set outcome = 'deny' where seq = ${victim}`);
    const broken = await getJson('/v1/admin/audit/verify');
    expect(broken.status).toBe(409);
    expect(broken.body).toMatchObject({ ok: false, broken_at: victim, reason: 'hash_mismatch' });
    const cli = await tessera(['audit', 'verify']);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`BROKEN at seq ${victim} (hash_mismatch)`);
  });

  it('refuses to update or delete audit rows through the broker database role', async () => {
    // The broker's own pool: the restricted role it runs as, not the owner the test set-up uses.
    const db = broker.deps.db;
    await expect(sql`update audit_events set outcome = 'x'`.execute(db)).rejects.toThrow(/permission denied/);
    await expect(sql`delete from audit_events`.execute(db)).rejects.toThrow(/permission denied/);
    await expect(sql`truncate audit_events`.execute(db)).rejects.toThrow(/permission denied/);
    await expect(sql`update audit_pending set outcome = 'x'`.execute(db)).rejects.toThrow(/permission denied/);
    await expect(
      db.transaction().execute(async (trx) => {
        await sql`set local tessera.audit_retention = 'on'`.execute(trx);
        await sql`delete from audit_events`.execute(trx);
      }),
    ).rejects.toThrow(/permission denied/);
  });
});

describe('no secret is stored or logged', () => {
  // The suite-wide teardown (test/support/global-teardown.ts) scans every test database and every
  // broker's log after all files ran; this is the same scan, early, for the flows of this file.
  it('finds no JWT, PEM block or broker secret in any table or in the logs after the flows above', async () => {
    await broker.deps.audit.flush();
    expect(await scanDatabase(broker.database.db, 'audit.e2e')).toEqual([]);
    const logs = JSON.stringify(broker.logs);
    expect(logs.length).toBeGreaterThan(1000);
    expect(secretShapes(logs)).toEqual([]);
    expect(logs).not.toContain(TEST_ADMIN_KEY);
    const keys = await broker.database.db.selectFrom('signing_keys').select('private_key_enc').execute();
    for (const k of keys) expect(k.private_key_enc).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});
