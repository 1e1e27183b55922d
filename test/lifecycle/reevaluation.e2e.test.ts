import { signalFollowUps } from '../../src/signals/follow-up.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { sql } from 'kysely';
import { metricValue, post } from '../support/broker.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { insertSignals } from '../../src/signals/signal.repository.js';
import { grantReevaluator, reevaluateDueGrants } from '../../src/decisions/reevaluation.js';
import { REEVALUATION_BACKOFF, reevaluateActiveGrants, type GrantDecide } from '../../src/grants/reevaluate.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';
import { testConfig } from '../support/fixtures.js';

const SOURCE_KEY = 'posture-source-key-for-tests-0123456789';
const POLICIES = `@id("all") permit (principal, action, resource);
@id("runner") @reason("the runner is not attested as trusted")
forbid (principal, action == Action::"deploy-prod", resource) unless { context.signals has runner_trust && context.signals.runner_trust == "trusted" };
@id("host") @reason("the host is compromised")
forbid (principal, action == Action::"deploy-prod", resource) when { context.signals has host_posture && context.signals.host_posture == "compromised" };`;

/** The shared test registry plus the signal types, their source, and `policies`. */
const configure = (policies: string, runnerMaxAge = 900, hostMaxAge = 900) => (c: ReturnType<typeof testConfig>) => ({
  ...c,
  signal_types: [
    { name: 'runner_trust', description: 'runner attestation', reason: 'untrusted runners must not deploy', subject_kind: 'workload', value: { type: 'string', enum: ['trusted', 'untrusted'] }, sources: ['posture'], max_age_seconds: runnerMaxAge },
    { name: 'host_posture', description: 'EDR verdict', reason: 'a compromised host leaks credentials', subject_kind: 'host', subject_claim: 'runner_name', value: { type: 'string' }, sources: ['posture'], max_age_seconds: hostMaxAge },
  ],
  signal_sources: [{ id: 'posture', api_key_sha256: sha256Hex(SOURCE_KEY) }],
  policies: [{ file: 'all.cedar', text: policies }],
});

let t: Lifecycle;
let rs: { client_id: string; client_secret: string };
beforeAll(async () => {
  t = await startLifecycleBroker({ configure: configure(POLICIES) });
  rs = (await t.admin('/resource-servers', { name: 'deployer', audiences: ['https://deploy.example'] })).body as typeof rs;
});
afterAll(async () => t.close());
// Each test starts with a trusted runner and no grant left active, a minute after the last.
beforeEach(async () => {
  t.broker.clock.advance(60);
  await t.admin('/revocations', { all: true, reason: 'next test' });
  expect((await signal('runner_trust', 'api-deploy', 'trusted')).status).toBe(202);
});

const now = () => t.broker.clock.now();
const db = () => t.broker.database.db;
const signal = (type: string, subject: string, value: string, extra: Record<string, string> = {}) =>
  post(`${t.broker.url}/v1/signals`, { signals: [{ type, subject, value, observed_at: now().toISOString(), ...extra }] }, { authorization: `Bearer ${SOURCE_KEY}` });
const deploy = async (claims: Record<string, unknown> = {}) => {
  const res = await post(`${t.broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await t.ci.token(claims)}` });
  expect(res.status).toBe(201);
  return { id: res.body.grant_id as string, token: res.body.access_token as string };
};
const introspect = async (token: string) =>
  (await post(`${t.broker.url}/oauth2/introspect`, { token }, { authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` }, true)).body;
const reevaluations = (grantId: string) => db().selectFrom('decisions').selectAll().where('grant_id', '=', grantId).where('kind', '=', 'reevaluation').execute();

/** Runs `fn` as a broker whose signal hook never ran (it crashed, or the signal raced a mint). */
async function withoutHook<T>(fn: () => Promise<T>): Promise<T> {
  const hook = t.broker.deps.onSignals;
  t.broker.deps.onSignals = undefined;
  try {
    return await fn();
  } finally {
    t.broker.deps.onSignals = hook;
  }
}

describe('the re-evaluation sweep (durable)', () => {
  it('revokes a grant whose signal changed even though the hook never ran', async () => {
    const g = await deploy();
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
    expect((await t.grant(g.id)).status).toBe('active');
    const run = await reevaluateDueGrants(t.broker.deps, now());
    expect(run.detail).toMatchObject({ evaluated: 1, revoked: 1 });
    const grant = await t.grant(g.id);
    expect(grant).toMatchObject({ status: 'revoked', ended_by: 'policy:reevaluation', end_reason: 're-evaluation: the runner is not attested as trusted' });
    const [refusal] = await reevaluations(g.id);
    expect(refusal).toMatchObject({ id: grant.end_decision_id, outcome: 'deny', request: { reevaluation_of: g.id } });
    expect(await introspect(g.token)).toEqual({ active: false });
  });

  it('reads only grants that watch a signal: the flag follows the latest decision and gates the sweep', async () => {
    const g = await deploy();
    const watching = async () => (await db().selectFrom('grants').select('watches_signals').where('id', '=', g.id).executeTakeFirstOrThrow()).watches_signals;
    expect(await watching()).toBe(true); // runner_trust is about the workload itself
    await sql`update grants set watches_signals = false where id = ${g.id}`.execute(db());
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ evaluated: 0 });
    await sql`update grants set watches_signals = true where id = ${g.id}`.execute(db());
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ evaluated: 1, revoked: 1 });
  });

  it('a re-evaluation sets the flag from the decision it records', async () => {
    const g = await deploy();
    await sql`update grants set watches_signals = false where id = ${g.id}`.execute(db());
    // A workload-wide re-evaluation (as after a policy change) reads every active grant, watching or not.
    expect((await reevaluateActiveGrants(t.broker.deps, { workloadId: 'api-deploy' }, grantReevaluator(t.broker.deps), now())).evaluated).toBe(1);
    expect((await db().selectFrom('grants').select(['watches_signals', 'reevaluation_decision_id']).where('id', '=', g.id).executeTakeFirstOrThrow())).toMatchObject({ watches_signals: true, reevaluation_decision_id: expect.any(String) });
  });

  it('catches a signal stored at the very instant a grant was minted, after the hook had looked', async () => {
    const g = await deploy();
    // The hook ran for this subject before the grant existed: it found nothing to re-decide.
    await insertSignals(db(), [{ type: 'runner_trust', subject: 'api-deploy', value: 'untrusted', source: 'posture', observed_at: now(), expires_at: null }], now());
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail.revoked).toBe(1);
    expect((await t.grant(g.id)).status).toBe('revoked');
  });

  it('re-decides a grant once per signal change, not on every run', async () => {
    const g = await deploy();
    t.broker.clock.advance(10);
    // Still trusted, but only for another 5 minutes: the grant was judged fresh for 15.
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted', { expires_at: new Date(now().getTime() + 300_000).toISOString() }));
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ evaluated: 1, revoked: 0 });
    t.broker.clock.advance(15);
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ evaluated: 0 });
    const [kept] = await reevaluations(g.id);
    expect(kept).toMatchObject({ outcome: 'allow' });
    expect(await db().selectFrom('grants').select('reevaluation_decision_id').where('id', '=', g.id).executeTakeFirstOrThrow()).toEqual({ reevaluation_decision_id: kept!.id });
    expect(await reevaluations(g.id)).toHaveLength(1);
  });

  it('treats a signal past its own expires_at as stale', async () => {
    await signal('runner_trust', 'api-deploy', 'trusted', { expires_at: new Date(now().getTime() + 60_000).toISOString() });
    const g = await deploy();
    t.broker.clock.advance(59);
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail.evaluated).toBe(0);
    t.broker.clock.advance(2);
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail.revoked).toBe(1);
    expect((await t.grant(g.id)).status).toBe('revoked');
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail.evaluated).toBe(0);
  });

  it('several replicas sweeping at once decide each grant once: one decision, one end, one event', async () => {
    const grants = await Promise.all(Array.from({ length: 30 }, () => deploy()));
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
    const runs = await Promise.all([1, 2, 3].map(() => reevaluateDueGrants(t.broker.deps, now())));
    expect(runs.reduce((n, r) => n + r.detail.revoked!, 0)).toBe(30);
    expect(runs.reduce((n, r) => n + r.detail.evaluated!, 0)).toBe(30);
    for (const g of grants) {
      expect(await reevaluations(g.id)).toHaveLength(1);
      expect(await t.eventsFor(g.id)).toBe(1);
    }
  });
});

describe('the sweep after its first runs: candidates from indexes', () => {
  const sweep = () => reevaluateDueGrants(t.broker.deps, now()).then((r) => r.detail);
  const watch = async (id: string) => db().selectFrom('grants').select(['watched_keys', 'due_at']).where('id', '=', id).executeTakeFirstOrThrow();
  const watchFresh = async (id: string) => (await db().selectFrom('grants').select('watch_fresh').where('id', '=', id).executeTakeFirstOrThrow()).watch_fresh;
  const setMaxAge = async (seconds: number, hostSeconds = 900) => expect((await t.admin('/config', configure(POLICIES, seconds, hostSeconds)(testConfig(t.ci, t.agent.jwk)))).status).toBe(201);
  /** Runs `fn` with runner_trust's maximum age at `seconds` (host_posture's at `hostSeconds`), and puts the 900 s back whatever happens. */
  const withMaxAge = async (seconds: number, fn: () => Promise<void>, hostSeconds = 900) => {
    await setMaxAge(seconds, hostSeconds);
    try {
      await fn();
    } finally {
      await setMaxAge(900);
    }
  };
  /** Stores an observation as if its row had been stamped `secondsAgo` before now (ingest on a slow or skewed replica). */
  const storedLate = (value: string, secondsAgo: number) =>
    insertSignals(db(), [{ type: 'runner_trust', subject: 'api-deploy', value, source: 'posture', observed_at: now(), expires_at: null }], new Date(now().getTime() - secondsAgo * 1000));
  /** Runs the sweep until its full runs (first runs, or after a change of maximum ages) are behind it. */
  const settle = async () => {
    for (let i = 0; i < 3 && (await sweep()).recomputed !== undefined; i++);
  };

  it('a grant keeps the keys it read and when its fresh signal goes stale', async () => {
    const observed = now();
    const g = await deploy({ runner_name: 'runner-3' });
    expect(await watch(g.id)).toEqual({ watched_keys: ['runner_trust:api-deploy', 'host_posture:runner-3'], due_at: new Date(observed.getTime() + 900_000) });
  });

  it('tests only the candidates: a change stamped before the window is left to the next full run', async () => {
    const g = await deploy();
    await settle();
    // A run past the lookback of the trusted signal stored before the test, so no arrival names the grant's key.
    t.broker.clock.advance(61);
    await sweep();
    await storedLate('untrusted', 61); // before the previous run, less the 60 s lookback
    expect(await sweep()).toMatchObject({ evaluated: 0 });
    expect((await t.grant(g.id)).status).toBe('active');
    // A change of maximum ages makes the next run test every watching grant: it finds the change.
    await withMaxAge(1_800, async () => {
      expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
    });
  });

  it('finds a change stamped within the lookback before its previous run', async () => {
    const g = await deploy();
    await settle();
    t.broker.clock.advance(5);
    await storedLate('untrusted', 30);
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
    expect((await t.grant(g.id)).status).toBe('revoked');
  });

  it('an arrival makes the grants watching its key candidates, but those whose rows show they judged it fresh; the due ones are decided', async () => {
    const early = await deploy();
    await settle();
    // The observation stored before the test is within the lookback: both grants watch its key, and the
    // grant minted after it, like the one before, read it fresh, as their rows say. Neither is a candidate.
    const late = await deploy();
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ candidates: 0, due: 0, evaluated: 0 });
    // A newer observation that ends the freshness sooner: each grant read an older one, so both are due and decided.
    t.broker.clock.advance(1);
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted', { expires_at: new Date(now().getTime() + 300_000).toISOString() }));
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ candidates: 2, due: 2, evaluated: 2, revoked: 0 });
    for (const g of [early, late]) expect(await reevaluations(g.id)).toHaveLength(1);
    // Each decision recorded what it read, and each row with it: the arrival is within the lookback, but
    // neither grant is a candidate any more.
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ candidates: 0, due: 0, evaluated: 0 });
    expect(await watchFresh(early.id)).toEqual({ basis: (await reevaluations(early.id))[0]!.id, keys: { 'runner_trust:api-deploy': expect.objectContaining({ value: 'trusted' }) } });
  });

  it('a newer observation that repeats the fresh value decides nothing; the grant is re-decided, on it, when its own freshness ends', async () => {
    await withMaxAge(120, async () => {
      const first = now();
      await signal('runner_trust', 'api-deploy', 'trusted');
      const g = await deploy();
      await settle();
      expect((await watch(g.id)).due_at).toEqual(new Date(first.getTime() + 120_000));
      // An attestor's heartbeat: the same value 10 s later, through the hook and then the sweep.
      t.broker.clock.advance(10);
      const second = now();
      expect((await signal('runner_trust', 'api-deploy', 'trusted')).status).toBe(202);
      await signalFollowUps(t.broker.deps).settled();
      expect(await sweep()).toMatchObject({ candidates: 0, due: 0, evaluated: 0 });
      expect(await reevaluations(g.id)).toHaveLength(0);
      // Past the first observation's 120 s, the second is still fresh: one decision, on the second.
      t.broker.clock.advance(111);
      expect(await sweep()).toMatchObject({ due: 1, evaluated: 1, revoked: 0 });
      const [redecided] = await reevaluations(g.id);
      expect(redecided!.outcome).toBe('allow');
      expect((redecided!.signals as { used: Array<{ type: string; observed_at?: string }> }).used.find((u) => u.type === 'runner_trust')).toMatchObject({ observed_at: second.toISOString(), status: 'fresh' });
      expect((await watch(g.id)).due_at).toEqual(new Date(second.getTime() + 120_000));
      t.broker.clock.advance(5);
      expect(await sweep()).toMatchObject({ evaluated: 0 });
      expect((await t.grant(g.id)).status).toBe('active');
    });
  });

  it('a grant whose decision recorded no fresh_until (an older broker) is still due for a newer observation', async () => {
    const g = await deploy();
    await settle();
    await sql`update decisions set signals = jsonb_set(signals, '{used}', (select jsonb_agg(u - 'fresh_until') from jsonb_array_elements(signals->'used') u)) where grant_id = ${g.id}`.execute(db());
    await sql`update grants set watch_fresh = null where id = ${g.id}`.execute(db()); // nor did such a broker write this
    t.broker.clock.advance(5);
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted'));
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ due: 1, evaluated: 1, revoked: 0 });
  });

  it('the same value is news when the grant was judged on a stale observation of it', async () => {
    // host_posture is only forbidden when compromised: a stale observation (absent to policy) still mints.
    // Stored directly: ingest refuses an observation already older than its type's maximum age.
    const observed = new Date(now().getTime() - 1_000_000);
    await insertSignals(db(), [{ type: 'host_posture', subject: 'runner-3', value: 'healthy', source: 'posture', observed_at: observed, expires_at: null }], observed);
    const g = await deploy({ runner_name: 'runner-3' });
    const [mint] = await db().selectFrom('decisions').select('signals').where('grant_id', '=', g.id).where('kind', '<>', 'reevaluation').execute();
    expect((mint!.signals as { used: Array<{ type: string; status: string }> }).used.find((u) => u.type === 'host_posture')).toMatchObject({ status: 'stale', observed_at: observed.toISOString() });
    await settle();
    t.broker.clock.advance(5);
    await withoutHook(() => signal('host_posture', 'runner-3', 'healthy'));
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ due: 1, evaluated: 1, revoked: 0 });
    const [redecided] = await reevaluations(g.id);
    expect((redecided!.signals as { used: Array<{ type: string; status: string }> }).used.find((u) => u.type === 'host_posture')).toMatchObject({ status: 'fresh' });
  });

  it('a grant judged on a stale observation is tested when the maximum age grows and a fresh one of the same value arrives', async () => {
    // Judged on a stale "compromised" (absent to policy, so it minted); then the maximum age grows so
    // that observation would count as fresh; then a fresh "compromised" arrives. The grant's row holds
    // no fresh judgement of the host, so it stays a candidate and is decided.
    const observed = new Date(now().getTime() - 2_000_000); // 2,000 s: stale at 900 s, fresh at 3,600
    await insertSignals(db(), [{ type: 'host_posture', subject: 'runner-6', value: 'compromised', source: 'posture', observed_at: observed, expires_at: null }], observed);
    const g = await deploy({ runner_name: 'runner-6' });
    expect(Object.keys((await watchFresh(g.id))!.keys)).toEqual(['runner_trust:api-deploy']);
    await settle();
    await withMaxAge(
      900,
      async () => {
        await settle();
        t.broker.clock.advance(5);
        await withoutHook(() => signal('host_posture', 'runner-6', 'compromised'));
        t.broker.clock.advance(5);
        expect(await sweep()).toMatchObject({ candidates: 1, due: 1, evaluated: 1, revoked: 1 });
        expect((await t.grant(g.id)).end_reason).toBe('re-evaluation: the host is compromised');
      },
      3_600,
    );
  });

  it('a grant watching two keys that both arrive is a candidate when only one of them changed', async () => {
    await signal('host_posture', 'runner-7', 'healthy');
    const g = await deploy({ runner_name: 'runner-7' });
    expect(Object.keys((await watchFresh(g.id))!.keys).sort()).toEqual(['host_posture:runner-7', 'runner_trust:api-deploy']);
    await settle();
    t.broker.clock.advance(5);
    await withoutHook(() => post(`${t.broker.url}/v1/signals`, { signals: [
      { type: 'runner_trust', subject: 'api-deploy', value: 'trusted', observed_at: now().toISOString() },
      { type: 'host_posture', subject: 'runner-7', value: 'compromised', observed_at: now().toISOString() },
    ] }, { authorization: `Bearer ${SOURCE_KEY}` }));
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ candidates: 1, due: 1, evaluated: 1, revoked: 1 });
  });

  it('a key that did not change does not let off a grant already due by time on another (the hook asks by key alone)', async () => {
    await withMaxAge(120, async () => {
      const observed = now();
      await signal('runner_trust', 'api-deploy', 'trusted');
      await signal('host_posture', 'runner-8', 'healthy');
      const g = await deploy({ runner_name: 'runner-8' });
      await settle();
      t.broker.clock.advance(5);
      await withoutHook(() => signal('host_posture', 'runner-8', 'healthy'));
      const hookAsks = (at: Date) =>
        reevaluateActiveGrants(t.broker.deps, { due: { maxAges: { runner_trust: 120, host_posture: 900 }, candidates: { keys: ['host_posture:runner-8'], byTime: false } } }, grantReevaluator(t.broker.deps), at, { dryRun: true });
      expect((await hookAsks(now())).candidates).toEqual({ found: 0, due: 0 });
      // Past runner_trust's 120 s, the host heartbeat's grant is due: a candidate of the host key too.
      expect((await hookAsks(new Date(observed.getTime() + 121_000))).candidates).toEqual({ found: 1, due: 1 });
      expect((await t.grant(g.id)).status).toBe('active');
    });
  });

  it("a grant's row lets it off only for the decision it names, with no failure since, and fresh by the maximum age of now", async () => {
    // 120 s: the freshness the grant is judged on ends within its 300 s.
    await withMaxAge(120, async () => {
      await signal('runner_trust', 'api-deploy', 'trusted');
      const g = await deploy();
      await settle();
      const heartbeat = async () => {
        t.broker.clock.advance(5);
        await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted'));
        t.broker.clock.advance(5);
        return sweep();
      };
      expect(await heartbeat()).toMatchObject({ candidates: 0, evaluated: 0 });
      // Another decision than the grant's latest (an older broker wrote the row): tested in full, not due.
      await sql`update grants set watch_fresh = jsonb_set(watch_fresh, '{basis}', to_jsonb(gen_random_uuid()::text)) where id = ${g.id}`.execute(db());
      expect(await heartbeat()).toMatchObject({ candidates: 1, due: 0, evaluated: 0 });
      await sql`update grants set watch_fresh = jsonb_set(watch_fresh, '{basis}', to_jsonb(decision_id::text)) where id = ${g.id}`.execute(db());
      expect(await heartbeat()).toMatchObject({ candidates: 0 });
      // Asked as the signal hook asks (no due_at part), without writing: a maximum age shorter than the
      // judged observation's age, before any run has brought due_at forward; and a moment past the
      // freshness the grant was judged on, when a heartbeat without expires_at is the newest and a
      // longer maximum age keeps the judged observation itself from being stale.
      const keys = ['runner_trust:api-deploy'];
      const hookAsks = (maxAges: Record<string, number>, at: Date) =>
        reevaluateActiveGrants(t.broker.deps, { due: { maxAges, candidates: { keys, byTime: false } } }, grantReevaluator(t.broker.deps), at, { dryRun: true });
      expect((await hookAsks({ runner_trust: 120, host_posture: 900 }, now())).candidates).toEqual({ found: 0, due: 0 });
      expect((await hookAsks({ runner_trust: 10, host_posture: 900 }, now())).candidates).toEqual({ found: 1, due: 1 });
      const judgedUntil = new Date((await watchFresh(g.id))!.keys['runner_trust:api-deploy']!.fresh_until);
      expect((await hookAsks({ runner_trust: 3_600, host_posture: 900 }, new Date(judgedUntil.getTime() + 1_000))).candidates).toEqual({ found: 1, due: 1 });
      // A re-evaluation that failed since: due, decided, and the success lets the grant off again.
      await sql`update grants set reevaluation_failures = 1 where id = ${g.id}`.execute(db());
      expect(await heartbeat()).toMatchObject({ candidates: 1, due: 1, evaluated: 1, revoked: 0 });
      expect(await heartbeat()).toMatchObject({ candidates: 0 });
    });
  });

  describe('a starting broker (a restart, a new replica)', () => {
    /** The broker's deps as a new process would have them: the same database and registry, no memory of runs. */
    const started = () => ({ ...t.broker.deps });

    it('goes on from the runs completed before, and finds what arrived while none ran', async () => {
      const g = await deploy();
      await settle();
      t.broker.clock.advance(5);
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      t.broker.clock.advance(5);
      const run = (await reevaluateDueGrants(started(), now())).detail;
      expect(run.recomputed).toBeUndefined();
      expect(run).toMatchObject({ candidates: 1, due: 1, evaluated: 1, revoked: 1 });
      expect((await t.grant(g.id)).status).toBe('revoked');
    });

    it('makes full runs when the record holds other maximum ages', async () => {
      await settle();
      await withMaxAge(1_800, async () => {
        expect((await reevaluateDueGrants(started(), now())).detail.recomputed).toBeDefined();
      });
    });

    it('a replica whose clock runs ahead does not move a starting broker past what arrived', async () => {
      const g = await deploy();
      await settle();
      await sql`update reevaluation_sweep set covered_until = ${new Date(now().getTime() + 600_000)}`.execute(db());
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      t.broker.clock.advance(5);
      expect((await reevaluateDueGrants(started(), now())).detail).toMatchObject({ evaluated: 1, revoked: 1 });
      expect((await t.grant(g.id)).status).toBe('revoked');
    });

    it('no broker goes on from a record while full runs are rewriting due_at, or after a run that left a grant undecided', async () => {
      await settle();
      const record = () => db().selectFrom('reevaluation_sweep').selectAll().execute();
      expect(await record()).toHaveLength(1);
      // Ages changed: the first full run drops the record, before it rewrites any due_at.
      await withMaxAge(1_800, async () => {
        t.broker.clock.advance(5);
        expect((await reevaluateDueGrants(t.broker.deps, now())).detail.recomputed).toBeDefined();
        expect(await record()).toEqual([]);
      });
      await settle();
      expect(await record()).toHaveLength(1);
      // A run that could not decide a due grant drops it too.
      await deploy();
      const decide = t.broker.deps.decide;
      t.broker.deps.decide = () => Promise.reject(new Error('policy engine down'));
      try {
        await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
        t.broker.clock.advance(5);
        expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ failed: 1 });
      } finally {
        t.broker.deps.decide = decide;
      }
      expect(await record()).toEqual([]);
      expect((await reevaluateDueGrants(started(), now())).detail.recomputed).toBeDefined();
    });

    it('without a record makes its two full runs, and only then writes one', async () => {
      await settle();
      await sql`delete from reevaluation_sweep`.execute(db());
      const deps = started();
      const runs: Array<Record<string, number>> = [];
      for (let i = 0; i < 3; i++) {
        t.broker.clock.advance(5);
        runs.push((await reevaluateDueGrants(deps, now())).detail);
        if (i === 0) expect(await db().selectFrom('reevaluation_sweep').selectAll().execute()).toEqual([]);
      }
      expect(runs.map((r) => r.recomputed !== undefined)).toEqual([true, true, false]);
      expect(await db().selectFrom('reevaluation_sweep').select(['max_ages', 'covered_until']).executeTakeFirstOrThrow()).toEqual({ max_ages: { runner_trust: 900, host_posture: 900 }, covered_until: now() });
    });
  });

  it('two runs that find the same due candidates decide each grant once', async () => {
    const grants = [await deploy(), await deploy(), await deploy()];
    await settle();
    t.broker.clock.advance(1);
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted', { expires_at: new Date(now().getTime() + 300_000).toISOString() }));
    t.broker.clock.advance(5);
    // Both find the three due before either locks one; each page locks and tests them again.
    const runs = await Promise.all([sweep(), sweep()]);
    expect(runs.map((r) => r.due)).toEqual([3, 3]);
    expect(runs.reduce((n, r) => n + r.evaluated, 0)).toBe(3);
    for (const g of grants) expect(await reevaluations(g.id)).toHaveLength(1);
  });

  it('a shorter maximum age brings due_at forward, and the grant is swept when it comes', async () => {
    const observed = now();
    const g = await deploy();
    await withMaxAge(120, async () => {
      await settle();
      expect((await watch(g.id)).due_at).toEqual(new Date(observed.getTime() + 120_000));
      expect((await t.grant(g.id)).status).toBe('active');
      t.broker.clock.advance(121);
      expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
      expect((await t.grant(g.id)).end_reason).toBe('re-evaluation: the runner is not attested as trusted');
    });
  });

  it('a grant minted by an older broker (no watch) is worked out and tested by the next run', async () => {
    const g = await deploy();
    await settle();
    await sql`update grants set watched_keys = null, due_at = null, watch_basis = null where id = ${g.id}`.execute(db());
    await storedLate('untrusted', 10 * 60); // an arrival long before the window: only the repair finds it
    expect(await sweep()).toMatchObject({ outdated: 1, evaluated: 1, revoked: 1 });
  });

  it('a grant re-decided by an older broker (watch not written) gets the due_at of its new decision', async () => {
    const g = await deploy({ runner_name: 'runner-5' });
    await settle();
    // An older broker's sweep re-decides the grant after a host signal that expires in 30 s, and
    // writes the decision but not what the grant watches.
    await withoutHook(() => signal('host_posture', 'runner-5', 'ok', { expires_at: new Date(now().getTime() + 30_000).toISOString() }));
    const reevaluate = grantReevaluator(t.broker.deps);
    const olderBroker: GrantDecide = async (grant, at) => ({ ...(await reevaluate(grant, at)), watch: undefined });
    expect((await reevaluateActiveGrants(t.broker.deps, { workloadId: 'api-deploy' }, olderBroker, now())).evaluated).toBe(1);
    const [decision] = await reevaluations(g.id);
    expect(await sweep()).toMatchObject({ outdated: 1, evaluated: 0 });
    // Worked out from that decision: the host signal's own expiry, read from the observation (SQL).
    expect(await watch(g.id)).toEqual({ watched_keys: ['runner_trust:api-deploy', 'host_posture:runner-5'], due_at: new Date(now().getTime() + 30_000) });
    expect((await db().selectFrom('grants').select('watch_basis').where('id', '=', g.id).executeTakeFirstOrThrow()).watch_basis).toBe(decision!.id);
    t.broker.clock.advance(31);
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 0 }); // due by time; the host signal is gone, which the policy allows
    expect(await sweep()).toMatchObject({ evaluated: 0 });
  });

  const failedCount = (stage: 'decision' | 'write') => metricValue(t.broker.url, 'tessera_reevaluations_failed_total', `stage="${stage}"`);

  it('a re-evaluation that fails is tried again by every run, long after the signal arrived', async () => {
    const g = await deploy();
    await settle();
    const decide = t.broker.deps.decide;
    t.broker.deps.decide = () => Promise.reject(new Error('policy engine down'));
    const decisionsFailed = await failedCount('decision');
    try {
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1, revoked: 0 });
      expect(await failedCount('decision')).toBe(decisionsFailed + 1);
      t.broker.clock.advance(2 * 60); // the arrival is now older than any run's window
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1 });
      expect((await watch(g.id)).due_at!.getTime()).toBeLessThanOrEqual(now().getTime());
    } finally {
      t.broker.deps.decide = decide;
    }
    t.broker.clock.advance(2 * REEVALUATION_BACKOFF.firstSeconds); // past the second failure's backoff
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
    expect((await t.grant(g.id)).status).toBe('revoked');
  });

  it('a grant whose re-evaluation keeps failing is tried less and less often; a signal still tries it, a success clears it', async () => {
    const g = await deploy();
    await settle();
    const backoff = async () => {
      const r = await db().selectFrom('grants').select(['reevaluation_failures', 'reevaluation_retry_at']).where('id', '=', g.id).executeTakeFirstOrThrow();
      return { failures: r.reevaluation_failures, retryInSeconds: r.reevaluation_retry_at && (r.reevaluation_retry_at.getTime() - now().getTime()) / 1000 };
    };
    const decide = t.broker.deps.decide;
    let attempts = 0;
    const failing = () => {
      t.broker.deps.decide = () => {
        attempts++;
        return Promise.reject(new Error('policy engine down'));
      };
    };
    failing();
    try {
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1 });
      expect(await backoff()).toEqual({ failures: 1, retryInSeconds: REEVALUATION_BACKOFF.firstSeconds });
      // Each failure doubles the wait; runs before it leave the grant alone.
      for (const wait of [5, 10, 20]) {
        t.broker.clock.advance(wait - 1);
        expect(await sweep()).toMatchObject({ evaluated: 0, failed: 0 });
        t.broker.clock.advance(1);
        expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1 });
        expect(await backoff()).toEqual({ failures: Math.log2(wait / 5) + 2, retryInSeconds: wait * 2 });
      }
      expect(attempts).toBe(4);
      // A new observation is worth an attempt whatever the backoff: the signal's hook does not wait.
      expect((await signal('runner_trust', 'api-deploy', 'untrusted')).status).toBe(202);
      await vi.waitFor(async () => expect(await backoff()).toEqual({ failures: 5, retryInSeconds: 80 }));
      expect(attempts).toBe(5);
    } finally {
      t.broker.deps.decide = decide;
    }
    await withoutHook(() => signal('runner_trust', 'api-deploy', 'trusted'));
    t.broker.clock.advance(80);
    expect(await sweep()).toMatchObject({ evaluated: 1, failed: 0, revoked: 0 });
    expect(await backoff()).toEqual({ failures: 0, retryInSeconds: null });
    expect((await t.grant(g.id)).status).toBe('active');
    // The wait stops growing at its cap.
    failing();
    try {
      await db().updateTable('grants').set({ reevaluation_failures: 40, reevaluation_retry_at: now() }).where('id', '=', g.id).execute();
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1 });
      expect(await backoff()).toEqual({ failures: 41, retryInSeconds: REEVALUATION_BACKOFF.maxSeconds });
    } finally {
      t.broker.deps.decide = decide;
    }
  });

  /** A trigger on `table` that raises for rows whose `column` is `id`, with SQLSTATE `errcode`; dropped by the returned function. */
  const refuseRows = async (table: string, column: string, id: string, errcode = 'P0001') => {
    await sql`create function refuse_row() returns trigger language plpgsql as $$
      begin if new.${sql.raw(column)} = ${sql.lit(id)} then raise exception 'refused row' using errcode = ${sql.lit(errcode)}; end if; return new; end $$`.execute(db());
    await sql`create trigger refuse_row before insert or update on ${sql.table(table)} for each row execute function refuse_row()`.execute(db());
    return async () => {
      await sql`drop trigger refuse_row on ${sql.table(table)}`.execute(db());
      await sql`drop function refuse_row()`.execute(db());
    };
  };

  it('a grant whose writes Postgres refuses costs only itself: the rest of the run goes on', async () => {
    const poisoned = await deploy();
    const other = await deploy();
    await settle();
    const mark = () => db().selectFrom('grants').select(['status', 'reevaluated_at', 'reevaluation_decision_id']).where('id', '=', poisoned.id).executeTakeFirstOrThrow();
    const before = await mark();
    expect(before.status).toBe('active');
    // Postgres refuses the last of the first grant's writes (its CAEP event), after its decision, its
    // grant update and its audit event went through: all of them are rolled back with it.
    const restore = await refuseRows('security_events', 'grant_id', poisoned.id);
    const writesFailed = await failedCount('write');
    try {
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      expect(await sweep()).toMatchObject({ evaluated: 2, failed: 1, revoked: 1 });
      expect(await failedCount('write')).toBe(writesFailed + 1);
      expect((await t.grant(other.id)).status).toBe('revoked');
      expect(await mark()).toEqual(before);
      expect(await reevaluations(poisoned.id)).toEqual([]);
      const audited = sql<{ n: number }>`select (select count(*) from audit_pending where target_id = ${poisoned.id} and action = 'grant.revoked')
        + (select count(*) from audit_events where target_id = ${poisoned.id} and action = 'grant.revoked') as n`;
      expect(Number((await audited.execute(db())).rows[0]!.n)).toBe(0);
      expect((await watch(poisoned.id)).due_at!.getTime()).toBeLessThanOrEqual(now().getTime());
    } finally {
      await restore();
    }
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
    expect((await t.grant(poisoned.id)).status).toBe('revoked');
  });

  it('a grant whose row Postgres refuses even the due mark is asked about again, past the lookback', async () => {
    const g = await deploy();
    await settle();
    // Every update of the grant's row fails: its re-evaluation's, and the mark that leaves it due.
    const restore = await refuseRows('grants', 'id', g.id);
    try {
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1, revoked: 0 });
      t.broker.clock.advance(2 * 60); // the arrival is older than any run's window, and due_at was never set
      expect(await sweep()).toMatchObject({ evaluated: 1, failed: 1 });
    } finally {
      await restore();
    }
    t.broker.clock.advance(5);
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
    expect((await t.grant(g.id)).status).toBe('revoked');
  });

  it('an error of the database, not of one grant, fails the run and moves nothing on', async () => {
    const g = await deploy();
    await settle();
    // 53100 disk full: every grant would get it. The run fails rather than count them one by one.
    const restore = await refuseRows('decisions', 'grant_id', g.id, '53100');
    try {
      await withoutHook(() => signal('runner_trust', 'api-deploy', 'untrusted'));
      await expect(sweep()).rejects.toMatchObject({ code: '53100' });
      t.broker.clock.advance(2 * 60);
    } finally {
      await restore();
    }
    // The failed run did not move the window: the next run still reads that arrival.
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
  });

  it('a signal sent again with an earlier expires_at brings the grant forward', async () => {
    const observed = now();
    const at = (seconds: number) => new Date(observed.getTime() + seconds * 1000);
    await signal('runner_trust', 'api-deploy', 'trusted', { expires_at: at(600).toISOString() });
    const g = await deploy();
    expect((await watch(g.id)).due_at).toEqual(at(600));
    await settle();
    // The same observation again (same time, same value), now expiring in 60 s.
    await insertSignals(db(), [{ type: 'runner_trust', subject: 'api-deploy', value: 'trusted', source: 'posture', observed_at: observed, expires_at: at(60) }], now());
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 0 });
    expect((await watch(g.id)).due_at).toEqual(at(60));
    t.broker.clock.advance(61);
    expect(await sweep()).toMatchObject({ evaluated: 1, revoked: 1 });
  });
});

describe('host signals', () => {
  it('a compromised host revokes the grant of the runner it names within one run; the decision is linked', async () => {
    const onHost = await deploy({ runner_name: 'runner-7' });
    const elsewhere = await deploy({ runner_name: 'runner-8' });
    await withoutHook(() => signal('host_posture', 'runner-7', 'compromised'));
    expect((await reevaluateDueGrants(t.broker.deps, now())).detail).toMatchObject({ revoked: 1 });
    const grant = await t.grant(onHost.id);
    expect(grant).toMatchObject({ status: 'revoked', end_reason: 're-evaluation: the host is compromised' });
    const [refusal] = await reevaluations(onHost.id);
    expect(refusal!.id).toBe(grant.end_decision_id);
    expect((refusal!.signals as { used: Array<{ type: string; subject: string; value: string }> }).used).toContainEqual(expect.objectContaining({ type: 'host_posture', subject: 'runner-7', value: 'compromised' }));
    expect(await introspect(onHost.token)).toEqual({ active: false });
    expect((await t.grant(elsewhere.id)).status).toBe('active');
  });

  it('through POST /v1/signals the hook revokes at once', async () => {
    const g = await deploy({ runner_name: 'runner-9' });
    expect((await signal('host_posture', 'runner-9', 'compromised')).status).toBe(202);
    // The ingest path runs the hook after answering: wait for it, no job run, no sleep.
    await signalFollowUps(t.broker.deps).settled();
    expect((await t.grant(g.id)).status).toBe('revoked');
    expect(await introspect(g.token)).toEqual({ active: false });
  });
});

describe('re-evaluating every grant under a new policy version', () => {
  it('the dry run (tessera apply --reevaluate) shows what would be revoked and records nothing', async () => {
    const g = await deploy();
    const freeze = `${POLICIES}\n@id("freeze") @reason("deploy freeze") forbid (principal, action == Action::"deploy-prod", resource);`;
    expect((await t.admin('/config', configure(freeze)(testConfig(t.ci, t.agent.jwk)))).status).toBe(201);
    await t.broker.deps.audit.flush();
    const written = async () => ({
      decisions: (await db().selectFrom('decisions').select('id').where('grant_id', '=', g.id).execute()).length,
      audit: Number((await sql<{ n: string }>`select (select count(*) from audit_pending where action like 'decision.%' or action like 'grant.revoked')
        + (select count(*) from audit_events where action like 'decision.%' or action like 'grant.revoked') as n`.execute(db())).rows[0]!.n),
    });
    const before = await written();
    const preview = await t.admin('/grants:reevaluate?dry_run=true', {});
    expect(preview.body).toMatchObject({ dry_run: true, revoked: [{ grant_id: g.id, reason: 're-evaluation: deploy freeze', cascaded: false }] });
    expect(await written()).toEqual(before);
    expect((await t.grant(g.id)).status).toBe('active');

    const done = await t.admin('/grants:reevaluate', {});
    expect(done.body.revoked).toEqual([expect.objectContaining({ grant_id: g.id })]);
    expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', ended_by: 'admin:bootstrap' });
    expect((await written()).decisions).toBe(before.decisions + 1);
    expect((await t.admin('/config', configure(POLICIES)(testConfig(t.ci, t.agent.jwk)))).status).toBe(201);
  });
});
