import { sha256Hex } from '../../src/lib/hash.js';
import { ManualClock } from '../../src/lib/clock.js';
import { post, startTestBroker, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, type AgentKey } from '../support/fixtures.js';

/** Monday 2026-11-23 10:00 UTC: a weekday morning, so calendars in tests start out open. */
export const MONDAY_MORNING = '2026-11-23T10:00:00Z';
/** The API key of the `feed` signal source every world registers. */
export const FEED_KEY = 'feed-key-for-decision-tests-0123456789';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = Record<string, any>;
type Section = Record<string, unknown>;

/** The parts of a configuration a test varies; issuers, workloads and the feed source are fixed. */
export interface WorldConfig {
  tasks: Section[];
  signal_types?: Section[];
  policies?: Array<{ file: string; text: string }>;
  calendars?: Section[];
  settings?: Section;
}

/** A broker over real Postgres with a fake CI issuer, a CI workload (`pipeline`), an agent and a signal feed. */
export interface World {
  broker: TestBroker;
  ci: FakeIssuer;
  agent: AgentKey;
  clock: ManualClock;
  /** The whole configuration document this world was started with, to re-apply variations of it. */
  config(over?: Partial<WorldConfig>): Section;
  /** A CI identity token for `pipeline` (claims override GitHub-shaped defaults), issued now unless `iat` says otherwise. */
  pipeline(claims?: Record<string, unknown>, iat?: number): Promise<string>;
  /** A fresh RFC 7523 assertion for `agent-1`. */
  /** An RFC 7523 assertion of agent-1; `claims` adds to what it signs. */
  agentAssertion(claims?: Record<string, unknown>): Promise<string>;
  grant(identity: string, task: string, params?: Record<string, unknown>): Promise<{ status: number; body: Body }>;
  push(signals: unknown[], key?: string): Promise<{ status: number; body: Body }>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }>;
  decision(id: string): Promise<Body>;
  stop(): Promise<void>;
}

/** Starts a world; the feed source may send every signal type the config registers. */
export async function startWorld(base: WorldConfig, start = MONDAY_MORNING): Promise<World> {
  const clock = new ManualClock(start);
  const ci = await startFakeIssuer({ now: () => clock.now() });
  const agent = await agentKey('agent-1');
  const config = (over: Partial<WorldConfig> = {}): Section => {
    const c = { ...base, ...over };
    return {
      issuers: [{ id: 'ci', kind: 'oidc', issuer: ci.url, jwks_uri: ci.jwksUri, audiences: ['tessera'], algorithms: ['RS256'], max_token_age_seconds: 3600 }],
      workloads: [
        { id: 'pipeline', kind: 'ci', owner: 'api-team', bindings: [{ issuer: 'ci', claims: { repository: 'acme/api' } }] },
        { id: 'agent-1', kind: 'agent', owner: 'ops', public_keys: [agent.jwk] },
      ],
      tasks: c.tasks,
      signal_types: c.signal_types ?? [],
      signal_sources: [{ id: 'feed', api_key_sha256: sha256Hex(FEED_KEY) }],
      calendars: c.calendars ?? [],
      policies: c.policies ?? [],
      ...(c.settings ? { settings: c.settings } : {}),
    };
  };
  const broker = await startTestBroker(config() as never, { clock, scheduler: false });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${broker.url}/v1/admin${path}`, {
      method,
      headers: { ...bearer(TEST_ADMIN_KEY), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as Body };
  };
  return {
    broker,
    ci,
    agent,
    clock,
    config,
    pipeline: (claims = {}, iat) => ci.token({ sub: 'repo:acme/api:ref:refs/heads/main', ...claims }, iat === undefined ? {} : { iat }),
    agentAssertion: (claims = {}) => agent.assertion(broker.url, claims, Math.floor(clock.now().getTime() / 1000)),
    grant: (identity, task, params = {}) => post(`${broker.url}/v1/grants`, { task, params }, bearer(identity)),
    push: (signals, key = FEED_KEY) => post(`${broker.url}/v1/signals`, { signals }, bearer(key)),
    admin,
    decision: async (id) => (await admin('GET', `/decisions/${id}`)).body,
    async stop() {
      await broker.stop();
      await ci.close();
    },
  };
}

/** A signal type for the feed: `value` is its value spec, the rest has test defaults. */
export function signalType(name: string, subject_kind: string, value: Section, extra: Section = {}): Section {
  return { name, description: `${name} for tests`, reason: 'tests show it changes an outcome', subject_kind, value, sources: ['feed'], max_age_seconds: 600, ...extra };
}
