import { startTestBroker, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig, type AgentKey } from '../support/fixtures.js';
import { parseAdminIssuers } from '../../src/http/admin/admin-issuers.js';

export interface AdminResponse {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Calls the admin API: `body` is sent as JSON, or as is when it is a string (to send broken JSON). */
export async function adminCall(broker: TestBroker, method: string, path: string, key: string | undefined, body?: unknown): Promise<AdminResponse> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${broker.url}/v1/admin${path}`, {
    method: method.toUpperCase(),
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** Creates an admin key with the bootstrap admin key and returns its id and secret. */
export async function createKey(broker: TestBroker, name: string, role: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await adminCall(broker, 'post', '/keys', TEST_ADMIN_KEY, { name, role, ...extra });
  if (res.status !== 201) throw new Error(`creating key ${name}: ${res.status} ${res.text}`);
  return { id: res.body.id as string, key: res.body.key as string };
}

/** The audience the fake corporate IdP's admin logins carry (never a workload audience). */
export const ADMIN_AUDIENCE = 'tessera-admin';
/** Its groups claim values → roles, as an operator would set TESSERA_ADMIN_ISSUERS. */
export const IDP_GROUPS = { viewer: 'tessera-viewers', approver: 'tessera-approvers', operator: 'tessera-operators', admin: 'tessera-admins' } as const;

export interface AdminWorld {
  broker: TestBroker;
  ci: FakeIssuer;
  /** A human IdP trusted for admin logins: a real HTTP JWKS server. */
  idp: FakeIssuer;
  /** An ID token of `person` in `groups`, issued now by the IdP; `claims` override. */
  idpToken(person: string, groups: string[], claims?: Record<string, unknown>): Promise<string>;
  agent: AgentKey;
  stop(): Promise<void>;
}

/** A broker with the shared test registry, its fake CI issuer, the agent's key, and a trusted admin IdP. */
export async function startAdminWorld(): Promise<AdminWorld> {
  const world = {} as AdminWorld;
  const now = () => world.broker.clock.now();
  world.ci = await startFakeIssuer({ now });
  world.idp = await startFakeIssuer({ now });
  world.agent = await agentKey();
  const roles = Object.fromEntries(Object.entries(IDP_GROUPS).map(([role, group]) => [group, role]));
  const adminIssuers = parseAdminIssuers(JSON.stringify([{ issuer: world.idp.url, jwks_uri: world.idp.jwksUri, audience: ADMIN_AUDIENCE, roles }]));
  world.broker = await startTestBroker(testConfig(world.ci, world.agent.jwk), { adminIssuers });
  world.idpToken = (person, groups, claims = {}) => world.idp.token({ aud: ADMIN_AUDIENCE, sub: `u-${person}`, email: person, groups, ...claims });
  world.stop = async () => {
    await world.broker.stop();
    await world.ci.close();
    await world.idp.close();
  };
  return world;
}

/** Asks for a deploy-prod grant as the api-deploy pipeline. */
export async function requestDeployGrant(world: AdminWorld) {
  const res = await fetch(`${world.broker.url}/v1/grants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await world.ci.token()}` },
    body: JSON.stringify({ task: 'deploy-prod', params: { service: 'api' } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

export { TEST_ADMIN_KEY };
