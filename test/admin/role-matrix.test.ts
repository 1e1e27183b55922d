import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES, type AdminRoute, type AdminRouteName } from '../../src/http/admin/route-roles.js';
import { roleAtLeast, ROLES } from '../../src/http/admin/admin-keys.js';
import type { AdminRole } from '../../src/http/admin/admin.table.js';
import { testConfig } from '../support/fixtures.js';
import { insertApproval } from '../../src/approvals/approval.repository.js';
import { createApp } from '../../src/app.js';
import { adminCall, createKey, IDP_GROUPS, requestDeployGrant, startAdminWorld, TEST_ADMIN_KEY, type AdminResponse, type AdminWorld } from './support.js';

let world: AdminWorld;
const keys = {} as Record<AdminRole, { id: string; key: string }>;

/** Someone calling the admin API: `who` names the objects their samples work on, `actor` the audit events. */
interface Caller {
  who: string;
  role: AdminRole;
  actor: string;
  credential(): Promise<string>;
}
/** Every role twice: with an admin key, and signed in at the trusted IdP (a fresh ID token per call). */
const callers: Caller[] = [];
let revokedKey: string;
let expiredKey: string;
let grantId: string;
let decisionId: string;
let accessToken: string;
/** The signing key in use when the matrix starts: the one the admin's emergency revocation names. */
let signingKid: string;
/** A configuration version with a document, for the restore sample. */
let restorableVersion: string;
/** Keys the createKey sample made, one per caller that may create keys; revokeKey revokes them. */
const createdKeyIds: Record<string, string> = {};
/** A key nobody revokes in the matrix: the target a refused revokeKey names. */
let spareKeyId: string;
/** Pending approvals, one per caller and verb, so every allowed vote decides a request of its own. */
const approvalIds = { approve: {}, deny: {} } as Record<'approve' | 'deny', Record<string, string>>;

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
 * One valid request per route, for the caller making it: each caller works on objects of its own
 * (`m-<who>`), so every allowed call succeeds whatever the others did. Typed over every route name, so
 * a new route without a sample does not compile.
 */
const SAMPLES: Record<AdminRouteName, (who: string) => Sample> = {
  // An apply replaces the whole document, so it carries the seeded signal entries and policy along.
  applyConfig: () => ({ path: '/config', body: { ...testConfig(world.ci, world.agent.jwk), ...seedEntries } }),
  listConfigVersions: () => ({ path: '/config/versions' }),
  restoreConfigVersion: () => ({ path: `/config/versions/${restorableVersion}/restore` }),
  listWorkloads: () => ({ path: '/workloads?status=active&limit=2' }),
  getWorkload: () => ({ path: '/workloads/api-deploy' }),
  putWorkload: (who) => ({ path: `/workloads/m-${who}`, body: workloadSpec(`m-${who}`) }),
  suspendWorkload: (who) => ({ path: `/workloads/m-${who}/suspend`, body: { reason: 'matrix' } }),
  retireWorkload: (who) => ({ path: `/workloads/m-${who}/retire`, body: { reason: 'matrix' } }),
  activateWorkload: (who) => ({ path: `/workloads/m-${who}/activate`, body: { reason: 'matrix' } }),
  listSignalTypes: () => ({ path: '/signal-types' }),
  getSignalType: () => ({ path: '/signal-types/matrix_seed' }),
  putSignalType: (who) => ({ path: `/signal-types/m_${who}`, body: signalTypeSample }),
  deleteSignalType: (who) => ({ path: `/signal-types/m_${who}` }),
  listSignalSources: () => ({ path: '/signal-sources' }),
  getSignalSource: () => ({ path: '/signal-sources/matrix-seed' }),
  putSignalSource: (who) => ({ path: `/signal-sources/m-${who}`, body: { api_key_sha256: 'ab'.repeat(32) } }),
  deleteSignalSource: (who) => ({ path: `/signal-sources/m-${who}` }),
  listPolicies: () => ({ path: '/policies' }),
  getPolicy: () => ({ path: '/policies/matrix-seed.cedar' }),
  putPolicy: (who) => ({ path: `/policies/m-${who}.cedar`, body: { text: policySample(`m-${who}`) } }),
  deletePolicy: (who) => ({ path: `/policies/m-${who}.cedar` }),
  listIssuers: () => ({ path: '/issuers' }),
  getIssuer: () => ({ path: '/issuers/ci' }),
  putIssuer: (who) => ({ path: `/issuers/m-${who}`, body: { issuer: `https://m-${who}.example`, jwks: { keys: [world.agent.jwk] }, audiences: ['tessera'] } }),
  deleteIssuer: (who) => ({ path: `/issuers/m-${who}` }),
  listTasks: () => ({ path: '/tasks' }),
  getTask: () => ({ path: '/tasks/deploy-prod' }),
  putTask: (who) => ({ path: `/tasks/m-${who}`, body: { scopes: ['m:read'], audience: 'https://m.example', workloads: ['agent-1'] } }),
  deleteTask: (who) => ({ path: `/tasks/m-${who}` }),
  listDecisions: () => ({ path: '/decisions?workload=api-deploy&limit=2' }),
  getDecision: () => ({ path: `/decisions/${decisionId}` }),
  evaluateDecision: () => ({ path: '/decisions:evaluate', body: { workload: 'api-deploy', task: 'deploy-prod', params: { service: 'api' } } }),
  listGrants: () => ({ path: '/grants?workload=api-deploy&active=true' }),
  getGrant: () => ({ path: `/grants/${grantId}` }),
  grantTrail: () => ({ path: `/grants/${grantId}/trail` }),
  // Revoking the same grant again answers 200 with changed: false, so every allowed role succeeds.
  revokeGrant: () => ({ path: `/grants/${grantId}/revoke`, body: { reason: 'matrix' } }),
  revokeGrants: () => ({ path: '/revocations', body: { task: 'refund-payment', reason: 'matrix' } }),
  reevaluateGrants: () => ({ path: '/grants:reevaluate?dry_run=true' }),
  verifyAudit: () => ({ path: '/audit/verify' }),
  listAuditEvents: () => ({ path: '/audit/events?limit=5' }),
  exportAudit: () => ({ path: `/audit/export?since=${encodeURIComponent(world.broker.clock.now().toISOString())}` }),
  purgeAudit: () => ({ path: '/audit/purge', body: { before: '2000-01-01T00:00:00Z' } }),
  createKey: (who) => ({ path: '/keys', body: { name: `m-${who}-key`, role: 'viewer' } }),
  listKeys: () => ({ path: '/keys' }),
  revokeKey: (who) => ({ path: `/keys/${createdKeyIds[who] ?? spareKeyId}/revoke`, body: { reason: 'matrix' } }),
  listApprovals: () => ({ path: '/approvals?status=pending&workload=api-deploy&limit=2' }),
  getApproval: () => ({ path: `/approvals/${approvalIds.approve.viewer}` }),
  approveApproval: (who) => ({ path: `/approvals/${approvalIds.approve[who]}/approve`, body: { comment: 'matrix' } }),
  denyApproval: (who) => ({ path: `/approvals/${approvalIds.deny[who]}/deny`, body: { comment: 'matrix' } }),
  // Nothing listens on the discard port: deliveries to it fail and retry, which the matrix does not read.
  createApprovalWebhook: () => ({ path: '/approval-webhooks', body: { url: 'http://127.0.0.1:9/approvals' } }),
  createWebhook: () => ({ path: '/webhooks', body: { url: 'http://127.0.0.1:9/caep' } }),
  createResourceServer: (who) => ({ path: '/resource-servers', body: { name: `m-${who}`, audiences: ['https://deploy.example'] } }),
  // Revoking a key already revoked answers 200 with changed: false.
  revokeSigningKey: () => ({ path: `/signing-keys/${signingKid}/revoke`, body: { reason: 'matrix' } }),
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
    workload_sponsor: null,
    forbid: ['owner'],
    created_at: now,
    expires_at: new Date(now.getTime() + 3600_000),
  });
  return row.id;
}

beforeAll(async () => {
  world = await startAdminWorld();
  for (const role of ROLES) {
    keys[role] = await createKey(world.broker, `k-${role}`, role);
    callers.push({ who: role, role, actor: `admin:k-${role}`, credential: async () => keys[role].key });
  }
  for (const role of ROLES) {
    const person = `${role}@corp.example`;
    callers.push({ who: `idp_${role}`, role, actor: `admin:idp:${person}`, credential: () => world.idpToken(person, [IDP_GROUPS[role], 'all-staff']) });
  }
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
  decisionId = grant.body.decision_id!;
  accessToken = grant.body.access_token!;
  signingKid = world.broker.deps.keys.currentKid;
  restorableVersion = (await adminCall(world.broker, 'get', '/config/versions', TEST_ADMIN_KEY)).body.items[0].version as string;
  world.broker.clock.advance(2 * 86_400);
  for (const verb of ['approve', 'deny'] as const) for (const c of callers) approvalIds[verb][c.who] = await pendingApproval();
});
afterAll(() => world.stop());

/** Where the rule of thumb does not hold (see route-roles.ts): keys, receivers, resource servers, signing keys and audit retention need the most powerful role. */
const ADMIN_ONLY = /^\/(keys|approval-webhooks|webhooks|resource-servers|signing-keys|audit\/purge)/;

/** The role the table should give a route, by the rule the admin plane follows. */
function expectedRole(route: AdminRoute): AdminRole {
  if (ADMIN_ONLY.test(route.path)) return 'admin';
  if (route.method === 'get' || route.path === '/decisions\\:evaluate') return 'viewer';
  if (/^\/approvals\/:id\/(approve|deny)$/.test(route.path)) return 'approver';
  return 'operator';
}

/** The audit events one request recorded (after sealing what is staged). */
async function auditOf(res: AdminResponse) {
  await world.broker.deps.audit.flush();
  const requestId = res.headers.get('x-request-id')!;
  return world.broker.database.db.selectFrom('audit_events').select(['actor', 'action']).where('request_id', '=', requestId).execute();
}

/** Every route mounted in the app, as `method path`, found by walking express's router stacks. */
function mountedRoutes(): string[] {
  interface Layer {
    rawPath?: unknown;
    route?: { path: string; methods: Record<string, boolean> };
    handle: { stack?: Layer[] };
  }
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods)) found.push(`${m} ${prefix}${layer.route.path}`);
      } else if (layer.handle.stack) {
        walk(layer.handle.stack, typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? `${prefix}${layer.rawPath}` : prefix);
      }
    }
  };
  walk((createApp(world.broker.deps) as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return found;
}

const ROUTES = Object.entries(ADMIN_ROUTES) as Array<[AdminRouteName, AdminRoute]>;

describe('admin role matrix: every route × every role (admin key and IdP login) × every other credential', () => {
  it('the table holds every admin route the app mounts, and the app mounts every route in the table', () => {
    const mounted = mountedRoutes();
    const admin = mounted.filter((r) => r.split(' ')[1]!.startsWith('/v1/admin'));
    const table = ROUTES.map(([, route]) => `${route.method} /v1/admin${route.path}`);
    expect(admin.sort()).toEqual([...table].sort());
    // Nothing else under /v1/admin, mounted some other way (e.g. a router at the root naming the full path).
    expect(mounted.filter((r) => r.includes('/admin'))).toHaveLength(admin.length);
  });

  it('follows the role policy: reads need viewer, votes approver, writes operator; keys, receivers, resource servers, signing keys and audit retention admin', () => {
    for (const [, route] of ROUTES) expect(`${route.method} ${route.path} ${route.role}`).toBe(`${route.method} ${route.path} ${expectedRole(route)}`);
  });

  it('every route that changes something names the audit event it records; reads name none', () => {
    for (const [name, route] of ROUTES) {
      const writes = route.method !== 'get' && name !== 'evaluateDecision';
      expect({ name, audited: route.audit !== undefined }).toEqual({ name, audited: writes });
    }
  });

  for (const [name, route] of ROUTES) {
    it(`${route.method.toUpperCase()} ${route.path} needs ${route.role}${route.audit ? `, audited as ${route.audit}` : ''}`, async () => {
      for (const c of callers) {
        const sample = SAMPLES[name](c.who);
        const res = await adminCall(world.broker, route.method, sample.path, await c.credential(), sample.body);
        const allowed = roleAtLeast(c.role, route.role);
        const who = c.who;
        expect({ who, status: res.status, ok: allowed ? res.status >= 200 && res.status < 300 : res.status === 403 }).toMatchObject({ who, ok: true });
        if (name === 'createKey' && allowed) createdKeyIds[who] = res.body.id as string;
        if (!allowed) expect(res.body).toMatchObject({ code: 'insufficient_role' });
        const events = await auditOf(res);
        // Exactly one event says what this admin did; consequences (grants ended, a request decided) have their own.
        const own = events.filter((e) => e.action === route.audit);
        expect({ who, own }).toEqual({ who, own: allowed && route.audit ? [{ actor: c.actor, action: route.audit }] : [] });
      }

      const sample = SAMPLES[name]('admin');
      const now = Math.floor(world.broker.clock.now().getTime() / 1000);
      const admins = [IDP_GROUPS.admin];
      for (const [who, credential] of [
        ['no credential', undefined],
        ['a workload identity token', await world.ci.token()],
        ['a workload token shaped like an admin login', await world.ci.token({ aud: 'tessera-admin', email: 'admin@corp.example', groups: admins })],
        ['a broker-issued access token', accessToken],
        ['a revoked admin key', revokedKey],
        ['an expired admin key', expiredKey],
        ['a malformed key', 'tsk_nope'],
        ['an IdP login for another audience', await world.idpToken('admin@corp.example', admins, { aud: 'tessera' })],
        ['an IdP login no role maps to', await world.idpToken('admin@corp.example', ['all-staff'])],
        ['an expired IdP login', await world.idpToken('admin@corp.example', admins, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 })],
      ] as const) {
        // Broken JSON too: authentication comes before the body is read, so the answer is still 401.
        const res = await adminCall(world.broker, route.method, sample.path, credential, 'body' in route ? '{"broken' : undefined);
        expect({ who, status: res.status }).toEqual({ who, status: 401 });
        expect(res.body.detail).not.toMatch(/revoked|expired|unknown/);
      }
    });
  }

  it('refuses a low role with 403 before parsing the body (broken JSON is not a 400)', async () => {
    for (const [name, route] of ROUTES) {
      if (!('body' in route)) continue;
      for (const c of callers.filter((x) => !roleAtLeast(x.role, route.role))) {
        const res = await adminCall(world.broker, route.method, SAMPLES[name](c.who).path, await c.credential(), '{"broken');
        expect({ name, who: c.who, status: res.status }).toEqual({ name, who: c.who, status: 403 });
      }
    }
  });

  it('answers an unknown admin path 401 or 404 before reading its body', async () => {
    const huge = `{"x":"${'a'.repeat(100_000)}"}`;
    for (const [method, path] of [['post', '/nope'], ['put', '/keys/x'], ['post', '/workloads/api-deploy'], ['delete', '/approvals/x/approve']] as const) {
      for (const body of ['{"broken', huge]) {
        expect({ path, status: (await adminCall(world.broker, method, path, undefined, body)).status }).toEqual({ path, status: 401 });
        expect({ path, status: (await adminCall(world.broker, method, path, keys.viewer.key, body)).status }).toEqual({ path, status: 404 });
      }
    }
    // A workload identity token is no admin credential on unknown paths either.
    expect((await adminCall(world.broker, 'get', '/nope', await world.ci.token())).status).toBe(401);
  });
});

describe('the kill switch', () => {
  it('revoking every grant needs admin: an operator gets 403 and nothing is revoked', async () => {
    const grant = await requestDeployGrant(world);
    expect(grant.status).toBe(201);
    const refused = await adminCall(world.broker, 'post', '/revocations', keys.operator.key, { all: true, reason: 'panic' });
    expect(refused).toMatchObject({ status: 403, body: { code: 'insufficient_role' } });
    expect((await adminCall(world.broker, 'get', `/grants/${grant.body.grant_id}`, keys.viewer.key)).body.status).toBe('active');
    expect(await auditOf(refused)).toEqual([]);

    const done = await adminCall(world.broker, 'post', '/revocations', keys.admin.key, { all: true, reason: 'incident 9' });
    expect(done.status).toBe(200);
    expect(done.body.revoked).toBeGreaterThanOrEqual(1);
    expect((await adminCall(world.broker, 'get', `/grants/${grant.body.grant_id}`, keys.viewer.key)).body).toMatchObject({ status: 'revoked', ended_by: 'admin:k-admin' });
    expect((await auditOf(done)).filter((e) => e.action === 'grants.revoke')).toEqual([{ actor: 'admin:k-admin', action: 'grants.revoke' }]);
  });
});
