import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig, type AgentKey } from '../support/fixtures.js';
import type { TestDatabase } from '../support/database.js';
import { ManualClock } from '../../src/lib/clock.js';

export interface Lifecycle {
  broker: TestBroker;
  ci: FakeIssuer;
  agent: AgentKey;
  /** Mints a deploy-prod token for api-deploy; returns the grant id and token. */
  mintDeploy(ttl?: number): Promise<{ id: string; token: string }>;
  /** Mints a single-use refund-payment token for agent-1. */
  mintRefund(): Promise<{ id: string; token: string }>;
  admin(path: string, body: unknown): ReturnType<typeof post>;
  grant(id: string): Promise<{ status: string; ended_by: string | null; end_reason: string | null; end_decision_id: string | null; use_count: number }>;
  eventsFor(id: string): Promise<number>;
  close(): Promise<void>;
}

type Config = ReturnType<typeof testConfig>;

/**
 * A broker with the scheduler off (tests run jobs by hand at the ManualClock's time); `configure`
 * extends the shared test registry (more tasks, signal types, policies).
 */
export async function startLifecycleBroker(options: { database?: TestDatabase; configure?: (c: Config) => Record<string, unknown[]> } = {}): Promise<Lifecycle> {
  const clock = new ManualClock();
  const ci = await startFakeIssuer({ now: () => clock.now() });
  const agent = await agentKey();
  const base = testConfig(ci, agent.jwk);
  const broker = await startTestBroker(options.configure?.(base) ?? base, { scheduler: false, clock, database: options.database });
  const nowS = () => Math.floor(broker.clock.now().getTime() / 1000);
  const mint = async (identity: string, body: unknown) => {
    const res = await post(`${broker.url}/v1/grants`, body, { authorization: `Bearer ${identity}` });
    if (res.status !== 201) throw new Error(`mint failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { id: res.body.grant_id as string, token: res.body.access_token as string };
  };
  return {
    broker,
    ci,
    agent,
    mintDeploy: async (ttl) => mint(await ci.token(), { task: 'deploy-prod', params: { service: 'api' }, ...(ttl && { ttl_seconds: ttl }) }),
    mintRefund: async () => mint(await agent.assertion(broker.url, {}, nowS()), { task: 'refund-payment', params: { amount: 10 } }),
    admin: (path, body) => post(`${broker.url}/v1/admin${path}`, body, { authorization: `Bearer ${TEST_ADMIN_KEY}` }),
    grant: (id) =>
      broker.database.db.selectFrom('grants').select(['status', 'ended_by', 'end_reason', 'end_decision_id', 'use_count']).where('id', '=', id).executeTakeFirstOrThrow(),
    eventsFor: async (id) =>
      Number((await broker.database.db.selectFrom('security_events').select((eb) => eb.fn.countAll<string>().as('n')).where('grant_id', '=', id).executeTakeFirstOrThrow()).n),
    async close() {
      await broker.stop();
      await ci.close();
    },
  };
}

/** A webhook receiver on a real port: records each body; answers `status()` (202 by default). */
export async function startReceiver(status: () => number = () => 202) {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(body);
      res.statusCode = status();
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
