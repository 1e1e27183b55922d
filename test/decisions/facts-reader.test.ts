import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { FactsReader, usageRows, type FactsQuery } from '../../src/decisions/history.js';
import { RequestCounter, minuteOf } from '../../src/decisions/request-counter.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const NOW = new Date('2026-06-01T12:00:30Z');
let t: TestDatabase;
let statements = 0;
/** The database as the reader sees it, counting the statements it sends. */
let counted: Database;

beforeAll(async () => {
  t = await createTestDatabase();
  counted = new Proxy(t.db, {
    get(target, prop, receiver) {
      if (prop === 'executeQuery') {
        return (...args: Parameters<Database['executeQuery']>) => {
          statements++;
          return target.executeQuery(...args);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  // ci-a: 7 requests this minute, 4 the minute before, used deploy with service=api yesterday.
  await t.db
    .insertInto('request_buckets')
    .values([
      { workload_id: 'ci-a', minute: minuteOf(NOW), shard: 0, n: 7 },
      { workload_id: 'ci-a', minute: new Date(minuteOf(NOW).getTime() - 60_000), shard: 0, n: 4 },
      { workload_id: 'ci-b', minute: minuteOf(NOW), shard: 0, n: 1 },
    ])
    .execute();
  await t.db.insertInto('usage_baseline').values(usageRows('ci-a', 'deploy', { service: 'api' }, new Date(NOW.getTime() - 86_400_000))).execute();
});
afterAll(() => t.drop());

const ask = (workloadId: string, params: Record<string, unknown>, extra: Partial<FactsQuery> = {}): FactsQuery => ({
  workloadId,
  task: 'deploy',
  params,
  now: NOW,
  baselineDays: 30,
  countActiveGrants: false,
  signals: [],
  ...extra,
});

describe('FactsReader: history', () => {
  it('answers requests asked in the same turn with one statement, each with its own history', async () => {
    const counter = new RequestCounter(t.db);
    counter.increment('ci-b', NOW); // this replica's own count, not yet flushed
    const reader = new FactsReader(counted, counter);
    statements = 0;
    const [a, b, c] = await Promise.all([
      reader.read(ask('ci-a', { service: 'api' })).then((f) => f.history),
      reader.read(ask('ci-b', { service: 'api' }, { countActiveGrants: true })).then((f) => f.history),
      reader.read(ask('ci-a', { service: 'worker' })).then((f) => f.history),
    ]);
    expect(statements).toBe(1);
    // 7 this minute + half of the previous minute's 4 (30 s into the minute).
    expect(a).toEqual({ requestsLastMinute: 9, requestsLastHour: 11, activeGrants: null, taskIsNew: false, targetIsNew: false, newParams: [] });
    expect(b).toEqual({ requestsLastMinute: 2, requestsLastHour: 2, activeGrants: 0, taskIsNew: true, targetIsNew: true, newParams: ['service'] });
    expect(c).toMatchObject({ taskIsNew: false, targetIsNew: true, newParams: ['service'] });

    // The same questions one at a time give the same answers, one statement each.
    statements = 0;
    expect((await reader.read(ask('ci-a', { service: 'api' }))).history).toEqual(a);
    expect((await reader.read(ask('ci-b', { service: 'api' }, { countActiveGrants: true }))).history).toEqual(b);
    expect(statements).toBe(2);
  });

  it('splits a large burst into statements of at most 64 questions, answers in order', async () => {
    const reader = new FactsReader(counted, new RequestCounter(t.db));
    statements = 0;
    const answers = await Promise.all(Array.from({ length: 150 }, (_, i) => reader.read(ask(i % 2 ? 'ci-a' : 'ci-b', { service: 'api' })).then((f) => f.history)));
    expect(statements).toBe(3);
    answers.forEach((h, i) => expect(h.requestsLastHour, `answer ${i}`).toBe(i % 2 ? 11 : 1));
  });

  it('fails every request of a failed statement, and the next turn works again', async () => {
    let fail = true;
    const flaky = new Proxy(t.db, {
      get(target, prop, receiver) {
        if (prop !== 'executeQuery') return Reflect.get(target, prop, receiver) as unknown;
        return (...args: Parameters<Database['executeQuery']>) => (fail ? Promise.reject(new Error('connection terminated')) : target.executeQuery(...args));
      },
    });
    const reader = new FactsReader(flaky, new RequestCounter(t.db));
    const failed = await Promise.allSettled([reader.read(ask('ci-a', {})).then((f) => f.history), reader.read(ask('ci-b', {})).then((f) => f.history)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect((await reader.read(ask('ci-a', {}))).history.requestsLastHour).toBe(11);
  });
});
