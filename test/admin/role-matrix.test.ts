import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES, type AdminRouteName } from '../../src/http/admin/route-roles.js';
import { roleAtLeast, ROLES } from '../../src/http/admin/admin-keys.js';
import type { AdminRole } from '../../src/http/admin/admin.table.js';
import { testConfig } from '../support/fixtures.js';
import { insertApproval } from '../../src/approvals/approval.repository.js';
import { adminCall, createKey, requestDeployGrant, startAdminWorld, TEST_ADMIN_KEY, type AdminWorld } from './support.js';

let world: AdminWorld;
const keys = {} as Record<AdminRole, { id: string; key: string }>;
let revokedKey: string;
let expiredKey: string;
let grantId: string;
let accessToken: string;
/** Keys the createKey sample made, one per role that may create keys; revokeKey revokes them. */
const createdKeyIds: Partial<Record<AdminRole, string>> = {};
/** A key nobody revokes in the matrix: the target a refused revokeKey names. */
let spareKeyId: string;
/** Pending approvals, one per role and verb, so every allowed vote decides a request of its own. */
const approvalIds = { approve: {}, deny: {} } as Record<'approve' | 'deny', Record<AdminRole, string>>;

interface Sample {
  path: string;
  body?: unknown;
}

const SEED_POLICY = '@id("matrix-seed") permit (principal, action == Action::"deploy-prod", resource);';
const signalTypeSample = { description: 'matrix', reason: 'matrix', subject_kind: 'workload', value: { type: 'boolean' }, sources: ['matrix-seed'], max_age_seconds: 60 };
/** A forbid that never applies (nobody states this purpose), so the matrix's own grants are unaffected. */
const policySample = (id: string) => `@id("${id}") forbid (principal, action == Action::"deploy-prod", resource) when { context.purpose == "never-${id}" };`;
const seedEntries = {
  signal_sources: [{ id: 'matrix-seed', api_key_sha256: 'cd'.repeat(32) }],
  signal_types: [{ name: 'matrix_seed', ...signalTypeSample }],
  policies: [{ file: 'matrix-seed.cedar', text: SEED_POLICY }],
};
const workloadSpec = (id: string) => ({ kind: 'service', owner: 'matrix', public_keys: [world.agent.jwk], id });

/**
 * One valid request per route, for the role calling it: each role works on objects of its own
 * (`m-<role>`), so every allowed call succeeds whatever the others did. Typed over every route name, so
 * a new route without a sample does not compile.
 */
const SAMPLES: Record<AdminRouteName, (role: AdminRole) => Sample> = {
  // An apply replaces the whole document, so it carries the seeded signal entries and policy along.
  applyConfig: () => ({ path: '/config', body: { ...testConfig(world.ci, world.agent.jwk), ...seedEntries } }),
  listWorkloads: () => ({ path: '/workloads?status=active&limit=2' }),
  getWorkload: () => ({ path: '/workloads/api-deploy' }),
  putWorkload: (role) => ({ path: `/workloads/m-${role}`, body: workloadSpec(`m-${role}`) }),
  suspendWorkload: (role) => ({ path: `/workloads/m-${role}/suspend`, body: { reason: 'matrix' } }),
  retireWorkload: (role) => ({ path: `/workloads/m-${role}/retire`, body: { reason: 'matrix' } }),
  activateWorkload: (role) => ({ path: `/workloads/m-${role}/activate`, body: { reason: 'matrix' } }),
  listSignalTypes: () => ({ path: '/signal-types' }),
  getSignalType: () => ({ path: '/signal-types/matrix_seed' }),
  putSignalType: (role) => ({ path: `/signal-types/m_${role}`, body: signalTypeSample }),
  deleteSignalType: (role) => ({ path: `/signal-types/m_${role}` }),
  listSignalSources: () => ({ path: '/signal-sources' }),
  getSignalSource: () => ({ path: '/signal-sources/matrix-seed' }),
  putSignalSource: (role) => ({ path: `/signal-sources/m-${role}`, body: { api_key_sha256: 'ab'.repeat(32) } }),
  deleteSignalSource: (role) => ({ path: `/signal-sources/m-${role}` }),
  listPolicies: () => ({ path: '/policies' }),
  getPolicy: () => ({ path: '/policies/matrix-seed.cedar' }),
  putPolicy: (role) => ({ path: `/policies/m-${role}.cedar`, body: { text: policySample(`m-${role}`) } }),
  deletePolicy: (role) => ({ path: `/policies/m-${role}.cedar` }),
  listIssuers: () => ({ path: '/issuers' }),
  getIssuer: () => ({ path: '/issuers/ci' }),
  putIssuer: (role) => ({ path: `/issuers/m-${role}`, body: { issuer: `https://m-${role}.example`, jwks: { keys: [world.agent.jwk] }, audiences: ['tessera'] } }),
  deleteIssuer: (role) => ({ path: `/issuers/m-${role}` }),
  listTasks: () => ({ path: '/tasks' }),
  getTask: () => ({ path: '/tasks/deploy-prod' }),
  putTask: (role) => ({ path: `/tasks/m-${role}`, body: { scopes: ['m:read'], audience: 'https://m.example', workloads: ['agent-1'] } }),
  deleteTask: (role) => ({ path: `/tasks/m-${role}` }),
  listGrants: () => ({ path: '/grants?workload=api-deploy&active=true' }),
  getGrant: () => ({ path: `/grants/${grantId}` }),
  createKey: (role) => ({ path: '/keys', body: { name: `m-${role}-key`, role: 'viewer' } }),
  listKeys: () => ({ path: '/keys' }),
  revokeKey: (role) => ({ path: `/keys/${createdKeyIds[role] ?? spareKeyId}/revoke`, body: { reason: 'matrix' } }),
  listApprovals: () => ({ path: '/approvals?status=pending&workload=api-deploy&limit=2' }),
  getApproval: () => ({ path: `/approvals/${approvalIds.approve.viewer}` }),
  approveApproval: (role) => ({ path: `/approvals/${approvalIds.approve[role]}/approve`, body: { comment: 'matrix' } }),
  denyApproval: (role) => ({ path: `/approvals/${approvalIds.deny[role]}/deny`, body: { comment: 'matrix' } }),
  // Nothing listens on the discard port: deliveries to it fail and retry, which the matrix does not read.
  createApprovalWebhook: () => ({ path: '/approval-webhooks', body: { url: 'http://127.0.0.1:9/approvals' } }),
};

/** A pending approval for api-deploy, inserted directly (the matrix tests who may decide, not how requests arise). */
async function pendingApproval(): Promise<string> {
  const now = world.broker.clock.now();
  const row = await insertApproval(world.broker.database.db, {
    id: crypto.randomUUID(),
    workload_id: 'api-deploy',
    workload_owner: 'api-team',
    task: 'deploy-prod',
    params: { service: 'api' },
    params_sha256: '0'.repeat(64),
    purpose: null,
    decision_id: crypto.randomUUID(),
    required_approvals: 1,
    forbid_owner: true,
    created_at: now,
    expires_at: new Date(now.getTime() + 3600_000),
  });
  return row.id;
}

beforeAll(async () => {
  world = await startAdminWorld();
  for (const role of ROLES) keys[role] = await createKey(world.broker, `k-${role}`, role);
  const revoked = await createKey(world.broker, 'k-revoked', 'admin');
  expect((await adminCall(world.broker, 'post', `/keys/${revoked.id}/revoke`, TEST_ADMIN_KEY, { reason: 'test' })).status).toBe(200);
  revokedKey = revoked.key;
  expiredKey = (await createKey(world.broker, 'k-expired', 'admin', { expires_in_days: 1 })).key;
  spareKeyId = (await createKey(world.broker, 'k-spare', 'viewer')).id;
  // Entries the GET samples read: signal types, sources and policies live in the applied document.
  const seed = await adminCall(world.broker, 'put', '/signal-sources/matrix-seed', TEST_ADMIN_KEY, { api_key_sha256: 'cd'.repeat(32) });
  expect(seed.body).toMatchObject({ id: 'matrix-seed' });
  const seedType = await adminCall(world.broker, 'put', '/signal-types/matrix_seed', TEST_ADMIN_KEY, signalTypeSample);
  expect(seedType.body).toMatchObject({ name: 'matrix_seed' });
  // Once any policy exists Cedar decides (default deny), so the seed policy permits what the matrix mints.
  expect((await adminCall(world.broker, 'put', '/policies/matrix-seed.cedar', TEST_ADMIN_KEY, { text: SEED_POLICY })).status).toBe(201);
  const grant = await requestDeployGrant(world);
  expect(grant.status).toBe(201);
  grantId = grant.body.grant_id!;
  accessToken = grant.body.access_token!;
  world.broker.clock.advance(2 * 86_400);
  for (const verb of ['approve', 'deny'] as const) for (const role of ROLES) approvalIds[verb][role] = await pendingApproval();
});
afterAll(() => world.stop());

describe('admin role matrix: every route × every credential', () => {
  it('follows the role policy: reads need viewer, votes approver, writes operator, keys and receivers admin', () => {
    for (const route of Object.values(ADMIN_ROUTES)) {
      const expected = /^\/(keys|approval-webhooks)/.test(route.path)
        ? 'admin'
        : route.method === 'get'
          ? 'viewer'
          : /^\/approvals\/:id\/(approve|deny)$/.test(route.path)
            ? 'approver'
            : 'operator';
      expect(`${route.method} ${route.path} ${route.role}`).toBe(`${route.method} ${route.path} ${expected}`);
    }
  });

  for (const [name, route] of Object.entries(ADMIN_ROUTES) as Array<[AdminRouteName, (typeof ADMIN_ROUTES)[AdminRouteName]]>) {
    it(`${route.method.toUpperCase()} ${route.path} needs ${route.role}`, async () => {
      for (const role of ROLES) {
        const sample = SAMPLES[name](role);
        const res = await adminCall(world.broker, route.method, sample.path, keys[role].key, sample.body);
        const allowed = roleAtLeast(role, route.role);
        expect({ role, status: res.status, ok: allowed ? res.status >= 200 && res.status < 300 : res.status === 403 }).toMatchObject({ role, ok: true });
        if (name === 'createKey' && allowed) createdKeyIds[role] = res.body.id as string;
        if (!allowed) expect(res.body).toMatchObject({ code: 'insufficient_role' });
      }

      const sample = SAMPLES[name]('admin');
      const identity = await world.ci.token();
      for (const [who, credential] of [
        ['no credential', undefined],
        ['a workload identity token', identity],
        ['a broker-issued access token', accessToken],
        ['a revoked admin key', revokedKey],
        ['an expired admin key', expiredKey],
        ['a malformed key', 'tsk_nope'],
      ] as const) {
        // Broken JSON too: authentication comes before the body is read, so the answer is still 401.
        const res = await adminCall(world.broker, route.method, sample.path, credential, 'body' in route ? '{"broken' : undefined);
        expect({ who, status: res.status }).toEqual({ who, status: 401 });
        expect(res.body.detail).not.toMatch(/revoked|expired|unknown/);
      }
    });
  }

  it('refuses a low role with 403 before parsing the body (broken JSON is not a 400)', async () => {
    for (const [name, route] of Object.entries(ADMIN_ROUTES) as Array<[AdminRouteName, (typeof ADMIN_ROUTES)[AdminRouteName]]>) {
      if (!('body' in route)) continue;
      for (const role of ROLES.filter((r) => !roleAtLeast(r, route.role))) {
        const res = await adminCall(world.broker, route.method, SAMPLES[name](role).path, keys[role].key, '{"broken');
        expect({ name, role, status: res.status }).toEqual({ name, role, status: 403 });
      }
    }
  });
});
