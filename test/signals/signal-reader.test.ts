import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertSignals, type SignalKey } from '../../src/signals/signal.repository.js';
import { FactsReader } from '../../src/decisions/history.js';
import { RequestCounter } from '../../src/decisions/request-counter.js';
import type { Database } from '../../src/db/database.js';
import { gatherSignals } from '../../src/decisions/gather-signals.js';
import { signalTypeSpec } from '../../src/policy/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const at = (s: string) => new Date(`2026-12-01T10:00:${s}Z`);
/** The facts read as the decider asks it, for these signal keys (the history part is the same for each). */
const reader = (db: Database) => {
  const facts = new FactsReader(db, new RequestCounter(t.db));
  return {
    latest: (signals: SignalKey[]) =>
      facts.read({ workloadId: 'ci', task: 'deploy', params: {}, now: at('30'), baselineDays: 30, countActiveGrants: false, signals }).then((f) => f.signals),
  };
};
const signal = (type: string, subject: string, value: unknown, observed: string) => ({ type, subject, value, source: 'test', observed_at: at(observed), expires_at: null });

describe('FactsReader: signals', () => {
  it('answers requests asked in one turn from one statement (their history with it), each with the newest observation of its own keys', async () => {
    await insertSignals(t.db, [signal('trust', 'w1', 'old', '00'), signal('trust', 'w1', 'new', '05'), signal('trust', 'w2', 'w2-only', '01')], at('10'));
    // Observed at the same instant as w1's newest, received later: this one counts.
    await insertSignals(t.db, [signal('trust', 'w1', 'newest', '05'), signal('posture', 'h1', { ok: true }, '02')], at('11'));
    let statements = 0;
    const counting = t.db.withPlugin({ transformQuery: (a) => a.node, transformResult: async (a) => (statements++, a.result) });
    const r = reader(counting);
    const [a, b, c, none] = await Promise.all([
      r.latest([{ type: 'trust', subject: 'w1' }, { type: 'posture', subject: 'h1' }]),
      r.latest([{ type: 'trust', subject: 'w2' }, { type: 'posture', subject: 'h9' }]),
      r.latest([{ type: 'trust', subject: 'w3' }]),
      r.latest([]),
    ]);
    expect(statements).toBe(1);
    expect(a.map((s) => [s.type, s.subject, s.value]).sort()).toEqual([['posture', 'h1', { ok: true }], ['trust', 'w1', 'newest']]);
    expect(a.find((s) => s.type === 'posture')).toMatchObject({ observed_at: at('02'), received_at: at('11'), source: 'test', expires_at: null });
    expect(b.map((s) => [s.type, s.subject, s.value])).toEqual([['trust', 'w2', 'w2-only']]);
    expect(c).toEqual([]);
    expect(none).toEqual([]);
  });

  it('answers the same key for every request that asks it, and one request\'s unstorable key costs no other request', async () => {
    const r = reader(t.db);
    const [a, b, nul, surrogate] = await Promise.all([
      r.latest([{ type: 'trust', subject: 'w2' }]),
      r.latest([{ type: 'trust', subject: 'w2' }, { type: 'trust', subject: 'w1' }]),
      // Neither can be stored as text (U+0000) or jsonb (a lone surrogate): Postgres would refuse the statement.
      r.latest([{ type: 'trust', subject: 'runner\u0000x' }]),
      r.latest([{ type: 'trust', subject: 'runner\ud800x' }]),
    ]);
    expect(a.map((s) => s.value)).toEqual(['w2-only']);
    expect(b.map((s) => s.value).sort()).toEqual(['newest', 'w2-only']);
    expect(nul).toEqual([]);
    expect(surrogate).toEqual([]);
  });

  it('reads back any year Postgres stores, and matches a lone-surrogate subject to what was stored for it', async () => {
    const farFuture = new Date('9999-12-31T23:59:59-23:59'); // year 10000 in UTC
    await insertSignals(t.db, [{ ...signal('trust', 'far', 'x', '03'), expires_at: farFuture }, signal('trust', 'runner\ufffdx', 'replaced', '04')], at('12'));
    const r = reader(t.db);
    const [far, surrogate] = await Promise.all([r.latest([{ type: 'trust', subject: 'far' }]), r.latest([{ type: 'trust', subject: 'runner\ud800x' }])]);
    expect(far[0]!.expires_at?.getTime()).toBe(farFuture.getTime());
    expect(surrogate.map((s) => s.value)).toEqual(['replaced']);
    // The decision sees it under the subject it asked for.
    const type = signalTypeSpec.parse({ name: 'trust', description: 'd', reason: 'r', subject_kind: 'host', subject_claim: 'runner', value: { type: 'string' }, sources: ['test'], max_age_seconds: 3600 });
    const { uses, values } = gatherSignals({ wanted: [{ type, subject: 'runner\ud800x' }], keys: [] }, surrogate, at('30'));
    expect(uses[0]).toMatchObject({ status: 'fresh', subject: 'runner\ud800x', value: 'replaced' });
    expect(values).toEqual({ trust: 'replaced' });
  });

  it('a data exception in a shared statement costs only the request whose question caused it', async () => {
    // Stands in for Postgres refusing one question's data (class 22) in whichever statement carries it.
    const picky = new Proxy(t.db, {
      get(target, prop, receiver) {
        if (prop !== 'executeQuery') return Reflect.get(target, prop, receiver) as unknown;
        return (...args: Parameters<Database['executeQuery']>) =>
          JSON.stringify((args[0] as { parameters?: unknown }).parameters).includes('refused')
            ? Promise.reject(Object.assign(new Error('invalid input syntax'), { code: '22P02' }))
            : target.executeQuery(...args);
      },
    });
    const r = reader(picky);
    const [good, bad] = await Promise.allSettled([r.latest([{ type: 'trust', subject: 'w2' }]), r.latest([{ type: 'trust', subject: 'refused' }])]);
    expect(good.status === 'fulfilled' && good.value.map((s) => s.value)).toEqual(['w2-only']);
    expect(bad.status).toBe('rejected');
  });
});
