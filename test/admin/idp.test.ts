import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertApproval } from '../../src/approvals/approval.repository.js';
import { parseAdminIssuers } from '../../src/http/admin/admin-issuers.js';
import { startTestBroker } from '../support/broker.js';
import { testConfig } from '../support/fixtures.js';
import { adminCall, IDP_GROUPS, startAdminWorld, type AdminWorld } from './support.js';

let world: AdminWorld;
const call = async (method: string, path: string, token: string, body?: unknown) => adminCall(world.broker, method, path, token, body);

beforeAll(async () => {
  world = await startAdminWorld();
});
afterAll(() => world.stop());

describe('TESSERA_ADMIN_ISSUERS', () => {
  it('is validated at start-up with the bad field and an example', () => {
    expect(parseAdminIssuers(undefined)).toEqual([]);
    expect(() => parseAdminIssuers('{nope')).toThrow(/TESSERA_ADMIN_ISSUERS: must be a JSON array, e\.g\. \[\{"issuer"/);
    const base = { issuer: 'https://login.example.com', jwks_uri: 'https://login.example.com/jwks', audience: 'tessera-admin' };
    expect(() => parseAdminIssuers(JSON.stringify([{ ...base, roles: { admins: 'root' } }]))).toThrow(/TESSERA_ADMIN_ISSUERS\[0\.roles\.admins\]: /);
    expect(() => parseAdminIssuers(JSON.stringify([{ ...base, roles: {} }]))).toThrow(/\[0\.roles\]: map at least one claim value to a role/);
    expect(() => parseAdminIssuers(JSON.stringify([{ ...base, roles: { a: 'admin' } }, { ...base, roles: { a: 'viewer' } }]))).toThrow(/\[1\.issuer\]: trusted twice/);
    expect(parseAdminIssuers(JSON.stringify([{ ...base, roles: { a: 'admin' } }]))[0]).toMatchObject({ roles_claim: 'groups', person_claim: 'email', max_token_age_seconds: 3600 });
  });
});

describe('admins signed in at a trusted IdP', () => {
  it('get the highest role their groups map to, act as idp:<person>, and share one JWKS fetch', async () => {
    const fetches = world.idp.jwksFetches;
    const both = await world.idpToken('ops@corp.example', [IDP_GROUPS.viewer, IDP_GROUPS.operator]);
    const put = await call('put', '/tasks/idp-task', both, { scopes: ['x:read'], audience: 'https://x.example', workloads: ['agent-1'] });
    expect(put.status).toBe(201);
    expect((await call('get', '/keys', both)).status).toBe(403);
    for (let i = 0; i < 5; i++) expect((await call('get', '/tasks', await world.idpToken('v@corp.example', [IDP_GROUPS.viewer]))).status).toBe(200);
    expect(world.idp.jwksFetches - fetches).toBeLessThanOrEqual(1);
    await world.broker.deps.audit.flush();
    const events = await call('get', '/audit/events?target_type=task&target_id=idp-task', both);
    expect(events.body.items).toMatchObject([{ actor: 'admin:idp:ops@corp.example', action: 'task.put' }]);
  });

  it('without an e-mail claim the person is the subject', async () => {
    const token = await world.idpToken('unused', [IDP_GROUPS.operator], { email: undefined, sub: 'u-1234' });
    expect((await call('put', '/tasks/by-sub', token, { scopes: ['x:read'], audience: 'https://x.example', workloads: ['agent-1'] })).status).toBe(201);
    await world.broker.deps.audit.flush();
    expect((await call('get', '/audit/events?target_type=task&target_id=by-sub', token)).body.items).toMatchObject([{ actor: 'admin:idp:u-1234' }]);
  });

  it('vote as the person in their token: the owner is refused whatever the case', async () => {
    const now = world.broker.clock.now();
    const approval = await insertApproval(world.broker.database.db, {
      id: crypto.randomUUID(),
      workload_id: 'agent-1',
      workload_owner: 'Alice@Corp.Example',
      workload_sponsor: null,
      task: 'refund-payment',
      params: { amount: 5 },
      params_sha256: '0'.repeat(64),
      purpose: null,
      decision_id: crypto.randomUUID(),
      required_approvals: 1,
      forbid: ['owner', 'sponsor'],
      created_at: now,
      expires_at: new Date(now.getTime() + 600_000),
    });
    const alice = await world.idpToken('alice@corp.example', [IDP_GROUPS.approver]);
    expect((await call('post', `/approvals/${approval.id}/approve`, alice, {})).body).toMatchObject({ code: 'self_approval_forbidden' });
    const bob = await world.idpToken('bob@corp.example', [IDP_GROUPS.approver]);
    expect((await call('post', `/approvals/${approval.id}/approve`, bob, {})).body).toMatchObject({ status: 'approved', votes: [{ approver: 'admin:idp:bob@corp.example', person: 'bob@corp.example' }] });
  });
});

describe('an IdP that is also a workload issuer', () => {
  it('its workload tokens never pass as admin logins; its admin-audience logins do', async () => {
    const trust = (audience: string, role: string) =>
      parseAdminIssuers(JSON.stringify([{ issuer: world.ci.url, jwks_uri: world.ci.jwksUri, audience, roles_claim: 'repository_owner', roles: { acme: role } }]));
    // Misconfigured on purpose: the admin audience is the workload audience, and a claim every CI job
    // of the org carries maps to admin. The job's identity token still never passes.
    let other = await startTestBroker(testConfig(world.ci, world.agent.jwk), { adminIssuers: trust('tessera', 'admin'), clock: world.broker.clock });
    try {
      expect((await adminCall(other, 'get', '/keys', await world.ci.token())).status).toBe(401);
      expect(other.logs.some((l) => String(l.detail).includes('is a workload audience of issuer ci'))).toBe(true);
    } finally {
      await other.stop();
    }
    other = await startTestBroker(testConfig(world.ci, world.agent.jwk), { adminIssuers: trust('tessera-admin', 'viewer'), clock: world.broker.clock });
    try {
      expect((await adminCall(other, 'get', '/tasks', await world.ci.token({ aud: 'tessera-admin' }))).status).toBe(200);
      expect((await adminCall(other, 'get', '/tasks', await world.ci.token())).status).toBe(401);
    } finally {
      await other.stop();
    }
  });
});
