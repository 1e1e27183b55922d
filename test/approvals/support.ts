import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { agentKey, type AgentKey } from '../support/fixtures.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { ManualClock } from '../../src/lib/clock.js';

/**
 * A clock that runs with the wall clock and can be moved ahead: for worlds a child process drives (the
 * CLI signs its assertions with real time, which a frozen broker clock would soon call "in the future").
 */
export class RunningClock extends ManualClock {
  #aheadMs = 0;
  override now(): Date {
    return new Date(Date.now() + this.#aheadMs);
  }
  override advance(seconds: number): void {
    this.#aheadMs += seconds * 1000;
  }
  override set(to: Date | string | number): void {
    this.#aheadMs = new Date(to).getTime() - Date.now();
  }
}

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver: records every request; `answer` picks the status and JSON body of the reply. */
export async function startReceiver(answer: (r: Received) => { status: number; json?: unknown; delayMs?: number } = () => ({ status: 204 })) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const r = { headers: req.headers, body };
      received.push(r);
      const a = answer(r);
      setTimeout(() => {
        res.statusCode = a.status;
        if (a.json !== undefined) res.setHeader('content-type', 'application/json');
        res.end(a.json === undefined ? undefined : JSON.stringify(a.json));
      }, a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/approvals`,
    received,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** What a receiver does: check `t=…,v1=…` against HMAC-SHA256(secret, `${t}.${body}`) and the timestamp's age. */
export function verifySignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex');
  return expected === m[2] && Math.abs(nowSeconds - Number(m[1])) <= toleranceSeconds;
}

const stepUp = (task: string) => `@id("${task}-step-up") @step_up @max_ttl("120") @reason("${task} needs an approver")
permit (principal is Workload, action == Action::"${task}", resource) when { principal.kind == "service" };`;

/** What a world's configuration is built from. */
export interface WorldParts {
  exporter: AgentKey;
  other: AgentKey;
  delegatedUrl: string;
  /** A CI OIDC issuer: its tokens, unlike client assertions, can be presented more than once. */
  ci: FakeIssuer;
}

/** Tasks whose every request steps up, with different approval settings. */
export function approvalConfig({ exporter, other, delegatedUrl, ci }: WorldParts) {
  const task = (name: string, approval?: Record<string, unknown>) => ({
    name,
    scopes: ['data:export'],
    audience: 'https://crm.example',
    params: { destination: { type: 'string' } },
    workloads: ['exporter', 'other', 'pipeline'],
    ...(approval && { approval }),
  });
  return {
    issuers: [{ id: 'ci', issuer: ci.url, jwks_uri: ci.jwksUri, audiences: ['tessera'], algorithms: ['RS256'] }],
    workloads: [
      { id: 'exporter', kind: 'service', owner: 'alice', sponsor: 'Dave@Example.com', public_keys: [exporter.jwk] },
      { id: 'other', kind: 'service', owner: 'data', public_keys: [other.jwk] },
      { id: 'pipeline', kind: 'service', owner: 'platform', bindings: [{ issuer: 'ci', claims: { repository: 'acme/api' } }] },
    ],
    tasks: [
      task('export-data'),
      task('wipe-db', { required: 2, expires_in_seconds: 600 }),
      // The earlier spelling of `forbid: [sponsor]`, as stored documents still carry it.
      task('rotate-key', { forbid_owner: false, auto: { webhook: delegatedUrl, timeout_ms: 500 } }),
      task('read-audit', { forbid: ['owner'] }),
    ],
    policies: [{ file: 'step-up.cedar', text: ['export-data', 'wipe-db', 'rotate-key', 'read-audit'].map(stepUp).join('\n') }],
  };
}

export interface ApprovalWorld {
  broker: TestBroker;
  exporter: AgentKey;
  other: AgentKey;
  ci: FakeIssuer;
  delegated: Awaited<ReturnType<typeof startReceiver>>;
  /** What the delegated approver answers next. */
  delegatedAnswer: { status: number; json?: unknown; delayMs?: number };
  keys: Record<'alice' | 'bob' | 'carol', string>;
  /** A fresh client assertion of a workload (single-use jti, iat at the broker's clock). */
  identity(who?: AgentKey): Promise<string>;
  ask(task: string, destination: string, who?: AgentKey): ReturnType<typeof post>;
  vote(key: string, id: string, verb: 'approve' | 'deny', comment?: string): ReturnType<typeof post>;
  redeem(id: string, body: unknown, who?: AgentKey): ReturnType<typeof post>;
  status(id: string, who?: AgentKey): Promise<{ status: number; body: Record<string, any> }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  admin(path: string): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

/**
 * A broker (scheduler off: tests run jobs at the ManualClock's time) with step-up tasks and three
 * approver keys; `config` replaces approvalConfig (same workloads and keys).
 */
export async function startApprovalWorld(
  config: (parts: WorldParts) => Parameters<typeof startTestBroker>[0] = approvalConfig,
  clock: ManualClock = new ManualClock(),
): Promise<ApprovalWorld> {
  const w = { delegatedAnswer: { status: 200, json: { decision: 'approve', comment: 'low risk' } } } as ApprovalWorld;
  w.exporter = await agentKey('exporter');
  w.other = await agentKey('other');
  w.delegated = await startReceiver(() => w.delegatedAnswer);
  w.ci = await startFakeIssuer({ now: () => w.broker.clock.now() });
  w.broker = await startTestBroker(config({ exporter: w.exporter, other: w.other, delegatedUrl: w.delegated.url, ci: w.ci }), { scheduler: false, clock });
  const url = w.broker.url;
  w.keys = {} as ApprovalWorld['keys'];
  for (const name of ['alice', 'bob', 'carol'] as const) {
    const res = await post(`${url}/v1/admin/keys`, { name, role: 'approver' }, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
    w.keys[name] = res.body.key as string;
  }
  w.identity = (who = w.exporter) => who.assertion(url, {}, Math.floor(w.broker.clock.now().getTime() / 1000));
  w.ask = async (task, destination, who) => post(`${url}/v1/grants`, { task, params: { destination } }, { authorization: `Bearer ${await w.identity(who)}` });
  w.vote = (key, id, verb, comment) => post(`${url}/v1/admin/approvals/${id}/${verb}`, comment === undefined ? {} : { comment }, { authorization: `Bearer ${key}` });
  w.redeem = async (id, body, who) => post(`${url}/v1/approvals/${id}/redeem`, body, { authorization: `Bearer ${await w.identity(who)}` });
  w.status = async (id, who) => {
    const res = await fetch(`${url}/v1/approvals/${id}`, { headers: { authorization: `Bearer ${await w.identity(who)}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  w.admin = async (path) => (await fetch(`${url}/v1/admin${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).json() as Promise<Record<string, unknown>>;
  w.close = async () => {
    await w.broker.stop();
    await w.delegated.close();
    await w.ci.close();
  };
  return w;
}
