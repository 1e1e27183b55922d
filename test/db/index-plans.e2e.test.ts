import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { post } from '../support/broker.js';
import { PREPARED } from '../../src/db/database.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { reevaluateDueGrants } from '../../src/decisions/reevaluation.js';
import { JOBS } from '../../src/scheduler/jobs.js';
import { flushPendingAudit } from '../../src/audit/audit-outbox.js';
import { startLifecycleBroker, type Lifecycle } from '../lifecycle/support.js';
import type { testConfig } from '../support/fixtures.js';

/**
 * The tables that grow with traffic: a statement that must read one of them sequentially gets slower
 * with every grant, decision or event kept, on every call (the re-evaluation sweep once took 71-98 ms
 * at 50,000 active grants before it had an index to read; the facts read planned a sequential scan
 * and a sort at 302 ms per call on 100,000 signals). Not assertion_jtis: the replay cache holds only
 * assertions young enough to be replayed, and its purge, which deletes the expired half of it every
 * five minutes, reads it whole; an index on expiry would cost every assertion mint a write to save that.
 */
const GROWING = ['grants', 'decisions', 'audit_events', 'audit_pending', 'signals', 'usage_baseline', 'request_buckets', 'security_events'];
const MENTIONS_GROWING = new RegExp(`\\b(${GROWING.join('|')})\\b`);

const SOURCE_KEY = 'posture-source-key-for-index-plans-0123';
const POLICIES = `@id("all") permit (principal, action, resource);
@id("runner") forbid (principal, action == Action::"deploy-prod", resource) unless { context.signals has runner_trust && context.signals.runner_trust == "trusted" };`;
const configure = (c: ReturnType<typeof testConfig>) => ({
  ...c,
  signal_types: [{ name: 'runner_trust', description: 'runner attestation', reason: 'untrusted runners must not deploy', subject_kind: 'workload', value: { type: 'string', enum: ['trusted', 'untrusted'] }, sources: ['posture'], max_age_seconds: 900 }],
  signal_sources: [{ id: 'posture', api_key_sha256: sha256Hex(SOURCE_KEY) }],
  policies: [{ file: 'all.cedar', text: POLICIES }],
});

interface Sent {
  text: string;
  values: unknown[];
}

/**
 * Records every statement this process sends to Postgres while `fn` runs: the broker under test runs
 * in this process, so these are its statements (and the few reads the test makes), prepared ones
 * included, with their parameters.
 */
async function recordStatements(fn: (sent: readonly Sent[]) => Promise<void>): Promise<Sent[]> {
  const sent: Sent[] = [];
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args as [string | { text?: string; values?: unknown[] }, unknown];
    const text = typeof first === 'string' ? first : first?.text;
    const values = typeof first === 'string' ? second : first?.values;
    if (text) sent.push({ text, values: Array.isArray(values) ? values : [] });
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await fn(sent);
  } finally {
    pg.Client.prototype.query = query;
  }
  return sent;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}
const SCANS = ['Seq Scan', 'Index Scan', 'Index Only Scan'];
const indexesIn = (n: PlanNode): string[] => [...(n['Index Name'] ? [n['Index Name']] : []), ...(n.Plans ?? []).flatMap(indexesIn)];

/**
 * Where a plan reads a growing table without narrowing it: a sequential scan, or an index walked end
 * to end (no Index Cond) for anything but the order of a LIMIT right above it. Priced out of sequential
 * scans, a planner with no index that fits falls back to walking some other index whole, so both count.
 */
function unindexedReads(n: PlanNode, underLimit = false): string[] {
  const table = n['Relation Name'];
  const whole = table && GROWING.includes(table) && SCANS.includes(n['Node Type']) && !n['Index Cond'] && !(n['Node Type'] !== 'Seq Scan' && underLimit);
  const here = whole ? [`${n['Node Type']} on ${table}${n['Index Name'] ? ` via ${n['Index Name']}` : ''}`] : [];
  // Row locks sit between a LIMIT and the scan that feeds it in order (SELECT ... LIMIT n FOR UPDATE).
  const limits = n['Node Type'] === 'Limit' || (underLimit && n['Node Type'] === 'LockRows');
  return [...here, ...(n.Plans ?? []).flatMap((c) => unindexedReads(c, limits))];
}

/**
 * The hot statements and the indexes they were given. unindexedReads cannot tell a narrow read from
 * a long one on its own: Postgres also applies a condition on a later column of an index it walks whole.
 */
const PINNED: Array<{ what: string; statement: RegExp; indexes: string[] }> = [
  { what: "reads a mint's facts", statement: /from request_buckets b where b\.workload_id/, indexes: ['signals_latest', 'request_buckets_pk', 'usage_baseline_pk'] },
  { what: 'writes a mint', statement: /^\/\* prepared \*\/ with w as \(select 1 from workloads/, indexes: ['workloads_pkey', 'signing_keys_pkey'] },
  { what: 'writes the mints of one turn together', statement: /^\/\* prepared \*\/ with m as \(select \* from jsonb_to_recordset/, indexes: ['workloads_pkey', 'signing_keys_pkey'] },
  { what: 'sweeps every watching grant for re-evaluation (first runs)', statement: /g\.watches_signals and exists/, indexes: ['grants_active_watching', 'decisions_pkey', 'signals_latest'] },
  { what: 'brings due_at up to date (first runs)', statement: /^with page as \(select id from grants where status = 'active' and watches_signals and id >/, indexes: ['grants_active_watching', 'decisions_pkey'] },
  { what: 'works out the outdated watches (every run)', statement: /^with page as \(select id from grants where status = 'active' and watches_signals and watch_basis is distinct from/, indexes: ['grants_watch_outdated'] },
  { what: 'reads the arrivals since the last sweep', statement: /from signals where received_at >/, indexes: ['signals_received'] },
  { what: 'finds the candidates for re-evaluation', statement: /^select g\.id from \(select key, split_part.* union select g\.id from grants g where g\.status = 'active' and g\.watches_signals and g\.due_at <=/, indexes: ['signals_latest', 'grants_active_watched', 'grants_active_due'] },
  { what: "finds the grants watching a new signal's key (hook)", statement: /^select g\.id from \(select key, split_part(?!.* union ).*$/, indexes: ['signals_latest', 'grants_active_watched'] },
  { what: 'tests a page of candidates', statement: /g\.id = any\(.*g\.watches_signals and exists/, indexes: ['decisions_pkey', 'signals_latest'] },
  { what: 'ends expired grants', statement: /select id from grants where status = 'active' and expires_at <=/, indexes: ['grants_active_expiry'] },
  { what: 'purges ended grants', statement: /with doomed as \( select id from grants g where g\.status <> 'active' and g\.ended_at </, indexes: ['grants_ended_at'] },
  { what: 'purges old decisions', statement: /delete from decisions where id in \(select id from decisions where created_at </, indexes: ['decisions_time'] },
];

/** Other workloads' grants (most long ended, each with its event), decisions and signals: what a deployment accumulates. */
const SEED_VOLUME = [
  `insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, ended_at, ended_by, kid, token_sha256, identity, status_idx)
    select gen_random_uuid(), 'seed-' || (i % 500), 'deploy-prod', '{}', '{deploy:write}', 'https://deploy.example',
      $1::timestamptz - make_interval(days => i % 30), $1::timestamptz - make_interval(days => i % 30) + interval '5 minutes',
      case when i % 20 = 0 then 'active' else 'expired' end, case when i % 20 = 0 then null else $1::timestamptz - make_interval(days => i % 30) + interval '5 minutes' end,
      case when i % 20 = 0 then null else 'system:expiry' end, 'seed', md5(i::text), '{}', nextval('grant_status_idx_seq')
    from generate_series(1, 40000) as i`,
  // The active ones as a mint leaves them: watching their workload's runner_trust, fresh for a while yet.
  `update grants set expires_at = $1::timestamptz + interval '10 minutes', watched_keys = array['runner_trust:' || workload_id],
    due_at = $1::timestamptz + make_interval(secs => 60 + (hashtext(id::text) & 1023)) where workload_id like 'seed-%' and status = 'active'`,
  `insert into decisions (id, created_at, workload_id, task, outcome, reasons, errors, determining, request, signals, latency_us)
    select gen_random_uuid(), $1::timestamptz - make_interval(mins => i % 40000), 'seed-' || (i % 500), 'deploy-prod', 'allow', '{}', '{}', '{}', '{}', '{"used": []}', 100
    from generate_series(1, 40000) as i`,
  `insert into signals (type, subject, value, source, observed_at, received_at)
    select 'runner_trust', 'seed-' || (i % 500), '"trusted"', 'posture', $1::timestamptz - make_interval(mins => i), $1::timestamptz - make_interval(mins => i)
    from generate_series(1, 20000) as i`,
  `insert into security_events (grant_id, type, data, created_at)
    select id, 'session-revoked', '{}', ended_at from grants where workload_id like 'seed-%' and status <> 'active'`,
  `analyze`,
];

let t: Lifecycle;
beforeAll(async () => {
  t = await startLifecycleBroker({ configure });
});
afterAll(async () => t.close());

describe('index plans', () => {
  it('every statement the mint path, revocation and the lifecycle jobs send reads the growing tables through an index', async () => {
    const signal = (value: string) =>
      post(`${t.broker.url}/v1/signals`, { signals: [{ type: 'runner_trust', subject: 'api-deploy', value, observed_at: t.broker.clock.now().toISOString() }] }, { authorization: `Bearer ${SOURCE_KEY}` });
    // Sealing runs on a thread of its own, whose statements this process does not see: with the
    // sealer stopped, what the flows stage waits in the outbox and is sealed below, in this thread.
    await t.broker.deps.audit.stop();
    const sent = await recordStatements(async (sofar) => {
      expect((await signal('trusted')).status).toBe(202);
      const grants = [await t.mintDeploy(), await t.mintDeploy(60), await t.mintRefund()];
      // Mints that arrive together share one write statement, as they do under load; whether two land
      // in one turn depends on timing, so bursts are sent until one did.
      const shared = () => sofar.some((x) => x.text.includes('with m as (select * from jsonb_to_recordset'));
      for (let burst = 0; burst < 20 && !shared(); burst++) await Promise.all(Array.from({ length: 16 }, () => t.mintDeploy()));
      expect((await t.admin(`/grants/${grants[0]!.id}/revoke`, { reason: 'index plans' })).status).toBe(200);
      expect((await fetch(`${t.broker.url}/v1/status-lists/1`)).status).toBe(200);
      // The signal changes with nobody listening, then time passes: the sweeps, expiry, the status list,
      // the purge and key rotation have work (this registry has no webhooks or approvals to deliver).
      const hook = t.broker.deps.onSignals;
      t.broker.deps.onSignals = undefined;
      expect((await signal('untrusted')).status).toBe(202);
      t.broker.deps.onSignals = hook;
      t.broker.clock.advance(120);
      // A broker's first two sweeps test every watching grant; the jobs' run is then a candidates' run.
      for (let run = 0; run < 2; run++) await reevaluateDueGrants(t.broker.deps, t.broker.clock.now());
      // A grant, then an arrival that makes it due, for the candidates' run to find.
      expect((await signal('trusted')).status).toBe(202);
      await t.mintDeploy();
      t.broker.deps.onSignals = undefined;
      expect((await signal('untrusted')).status).toBe(202);
      t.broker.deps.onSignals = hook;
      for (const job of JOBS) await job.run(t.broker.deps, t.broker.clock.now());
      expect(await flushPendingAudit(t.broker.deps.db, t.broker.clock.now())).toBeGreaterThan(0);
      expect((await t.grant(grants[1]!.id)).status).not.toBe('active');
    });

    const statements = [...new Map(sent.filter((s) => /^\s*(\/\*.*?\*\/\s*)?(select|insert|update|delete|with)\b/is.test(s.text) && MENTIONS_GROWING.test(s.text)).map((s) => [s.text, s])).values()];
    const client = new pg.Client({ connectionString: t.broker.database.ownerUrl });
    await client.connect();
    const planned: Array<{ text: string; unindexed: string[]; indexes: Set<string> }> = [];
    try {
      // Planned against tables of some size, as the statements meet them in service: on a few rows the
      // planner reads a small partial index whole rather than look a row up by its key.
      for (const statement of SEED_VOLUME) await client.query(statement, statement.includes('$1') ? [t.broker.clock.now()] : []);
      // Sequential scans priced out, and joins that read a side whole (hash, merge): on these few rows
      // the planner would pick them whatever indexes exist. What is left is the indexed plan, if any.
      await client.query('set enable_seqscan = off; set enable_hashjoin = off; set enable_mergejoin = off');
      // A prepared statement may run on a generic plan after its fifth call: plan those both ways
      // where the server can (EXPLAIN (GENERIC_PLAN), Postgres 16 and later).
      const generic = Number((await client.query<{ v: string }>('show server_version_num')).rows[0]!.v) >= 160_000;
      for (const s of statements) {
        const explain = async (options: string, values: unknown[]) =>
          (await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (${options}) ${s.text}`, values)).rows[0]!['QUERY PLAN'][0]!.Plan;
        const plans = [await explain('format json', s.values), ...(generic && s.text.startsWith(PREPARED) ? [await explain('generic_plan, format json', [])] : [])];
        const used = plans.map((plan) => new Set(indexesIn(plan)));
        planned.push({ text: s.text.replace(/\s+/g, ' ').trim(), unindexed: plans.flatMap((plan) => unindexedReads(plan)), indexes: new Set([...used[0]!].filter((i) => used.every((u) => u.has(i)))) });
      }
    } finally {
      await client.end();
    }

    expect(planned.length).toBeGreaterThan(20);
    expect(planned.filter((p) => p.unindexed.length).map((p) => ({ statement: p.text.slice(0, 200), reads: p.unindexed }))).toEqual([]);
    // The statements that run on every mint or sweep, each through the index made for it.
    for (const pin of PINNED) {
      const matching = planned.filter((p) => pin.statement.test(p.text));
      expect(matching.length, `a statement that ${pin.what} was sent`).toBeGreaterThan(0);
      const used = new Set(matching.flatMap((p) => [...p.indexes]));
      for (const index of pin.indexes) expect(used.has(index), `${pin.what}: plan uses ${index} (it used ${[...used].join(', ')})`).toBe(true);
    }
  });
});
