import { policyToJson, type AuthorizationAnswer, type PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it } from 'vitest';
import { AnswerMemo, comparedValues, memoKey } from '../../src/policy/answer-memo.js';
import { evaluate, evaluateApprover } from '../../src/policy/evaluate.js';
import type { PolicyRequest } from '../../src/policy/policy-request.js';
import { compileWith } from './support.js';

const json = (text: string): PolicyJson => {
  const r = policyToJson(text);
  if (r.type !== 'success') throw new Error(JSON.stringify(r.errors));
  return r.json;
};
const when = (cond: string) => json(`permit (principal, action, resource) when { ${cond} };`);

describe('comparedValues: the context values policies only compare with literals', () => {
  it('collects each path with its literals, on either side of any comparison', () => {
    const found = comparedValues([
      when('context.broker.requests_last_minute > 10 && 3 <= context.broker.requests_last_minute'),
      when('context.broker.requests_last_minute == 10 || context.identity.token_age_seconds != -1'),
      when('context.broker.requests_last_minute < 100'),
    ]);
    expect(found).toEqual([
      { path: ['broker', 'requests_last_minute'], kind: 'long', literals: [3, 10, 100] },
      { path: ['identity', 'token_age_seconds'], kind: 'long', literals: [-1] },
    ]);
  });

  it('takes decimals compared by method or operator, in ten-thousandths', () => {
    const found = comparedValues([
      when('context.params.amount.lessThanOrEqual(decimal("100.00")) && decimal("-1.5").lessThan(context.params.amount)'),
      when('context.params.amount == decimal("0.0001") || context.params.amount.greaterThan(decimal("100.0"))'),
    ]);
    expect(found).toEqual([{ path: ['params', 'amount'], kind: 'decimal', literals: [-15_000n, 1n, 1_000_000n] }]);
    // Literals of both kinds for one path, or an unsafe integer, leave it out.
    expect(comparedValues([when('context.params.amount.lessThan(decimal("1.0")) || context.params.amount == 1')])).toEqual([]);
    expect(comparedValues([when('context.broker.requests_last_minute > 9007199254740993')])).toEqual([]);
  });

  it('leaves out a path read any other way, in any policy, or through a record above it', () => {
    const rlm = 'context.broker.requests_last_minute > 10';
    const without = (other: string) => comparedValues([when(rlm), when(other)]).map((c) => c.path.join('.'));
    expect(without('context.broker.requests_last_minute + 1 > 10')).toEqual([]);
    expect(without('context.broker.requests_last_minute > context.broker.active_grants')).toEqual([]);
    expect(without('[1, 2].contains(context.broker.requests_last_minute)')).toEqual([]);
    expect(without('context.broker == {}')).toEqual([]);
    expect(without('context.broker.requests_last_minute > 2 + 1')).toEqual([]);
    expect(without('(if context.broker.task_is_new then context.broker.requests_last_minute else 0) > 10')).toEqual([]);
    expect(without('{ n: context.broker.requests_last_minute }.n > 10')).toEqual([]);
    expect(comparedValues([when(rlm), json('permit (principal, action, resource) unless { context.broker.requests_last_minute * 2 > 3 };')])).toEqual([]);
    // Presence is kept by the key, so a `has` test does not rule the path out; nor does a read of a sibling.
    expect(without('context.broker has requests_last_minute')).toEqual(['broker.requests_last_minute']);
    expect(without('context has broker.requests_last_minute')).toEqual(['broker.requests_last_minute']);
    expect(without('context.broker.task_is_new')).toEqual(['broker.requests_last_minute']);
  });
});

/**
 * A set whose answers turn on where two counters lie among several literals, and on a third that is
 * compared with a literal too but also read in arithmetic, so the memo must keep it exact.
 */
const thresholds = [
  {
    file: 'thresholds.cedar',
    text: `@id("busy") @max_ttl("120") permit (principal, action == Action::"refund-payment", resource) when { (context.broker.requests_last_minute >= 3 || 7 == context.identity.token_age_seconds) && context.params.amount.lessThanOrEqual(decimal("50.00")) };
@id("small") @max_ttl("30") permit (principal, action == Action::"refund-payment", resource) when { decimal("25.5").greaterThan(context.params.amount) };
@id("quiet") @max_ttl("60") permit (principal, action == Action::"refund-payment", resource) when { context.broker.requests_last_minute < 5 && context.identity.token_age_seconds <= 7 };
@id("spike") @reason("spike") forbid (principal, action == Action::"refund-payment", resource) when { context.broker.requests_last_minute > 10 && context.broker.requests_last_minute != 12 };
@id("exact") @reason("exact") forbid (principal, action == Action::"refund-payment", resource) when { context.params.amount == decimal("25.5") && context.broker.requests_last_minute == 1 };
@id("hourly") @reason("hourly") forbid (principal, action == Action::"refund-payment", resource) when { context.broker.requests_last_hour > 40 && context.broker.requests_last_hour + 1 > 50 };`,
  },
];

const refund = (minute: number, hour: number, age: number, amount: number): PolicyRequest => ({
  workload: { id: 'agent-1', kind: 'agent', owner: 'o' },
  task: { name: 'refund-payment', risk: 'medium' },
  params: { order_id: 'o-1', amount },
  purpose: 'refund',
  identity: { issuer: 'i', subject: 's', token_age_seconds: age, claims: {} },
  signals: {},
  broker: { requests_last_minute: minute, requests_last_hour: hour, active_grants: 0, task_is_new: false, target_is_new: false, new_params: [], calendars: { change_window: false } },
});

describe('evaluate with the memo', () => {
  it('answers every request as Cedar does, around and between every literal', () => {
    const memoised = compileWith(thresholds, { preparse: true });
    const plain = compileWith(thresholds);
    const plan = memoised.plans['refund-payment']!;
    expect(plan.memo!.compared).toEqual([
      { path: ['broker', 'requests_last_minute'], kind: 'long', literals: [1, 3, 5, 10, 12] },
      { path: ['identity', 'token_age_seconds'], kind: 'long', literals: [7] },
      { path: ['params', 'amount'], kind: 'decimal', literals: [255_000n, 500_000n] },
    ]);
    const outcomes = new Set<string>();
    const cedarSaid = new Map<string, unknown>();
    // Twice over: the first pass fills the memo, the second is answered from it.
    for (let pass = 0; pass < 2; pass++) {
      for (let minute = 0; minute <= 13; minute++) {
        for (const hour of [49, 50, 51]) {
          for (const age of [6, 7, 8]) {
            for (const amount of [25.4999, 25.5, 25.5001, 49.9999, 50, 50.0001]) {
              const at = `minute ${minute}, hour ${hour}, age ${age}, amount ${amount}`;
              if (!pass) {
                const { evaluationMicros: _, ...fromCedar } = evaluate(plain, refund(minute, hour, age, amount));
                cedarSaid.set(at, fromCedar);
                outcomes.add(`${fromCedar.outcome} ${fromCedar.determining.join('+')} ${fromCedar.maxTtlSeconds ?? ''}`);
              }
              const { evaluationMicros: _, ...fromMemo } = evaluate(memoised, refund(minute, hour, age, amount));
              expect(fromMemo, at).toEqual(cedarSaid.get(at));
            }
          }
        }
      }
    }
    // Every policy decided some request, alone or with another: the grid reaches each interval.
    expect([...outcomes].sort()).toEqual([
      'allow busy 120',
      'allow busy+quiet 60',
      'allow busy+quiet+small 30',
      'allow busy+small 30',
      'allow quiet 60',
      'allow quiet+small 30',
      'allow small 30',
      'deny  ',
      'deny exact ',
      'deny exact+hourly ',
      'deny hourly ',
      'deny hourly+spike ',
      'deny spike ',
    ]);
    // One answer per interval of the amount (5: below 25.5, 25.5, between, 50, above) × of the minute
    // count (11) × of the age (3) × exact hour (3), whatever the values.
    expect(plan.memo!.store.size).toBe(5 * 11 * 3 * 3);
  });

  it('answers as Cedar does when a compared value is optional or absent, when policies err, and for approvers', () => {
    const policies = [
      {
        file: 'export.cedar',
        text: `@id("small") permit (principal, action == Action::"export-customer-data", resource) when { context.params has max_rows && context.params.max_rows <= 1000 };
@id("large") @step_up permit (principal, action == Action::"export-customer-data", resource) when { context.params has max_rows && context.params.max_rows > 1000 };
@id("unbounded") @step_up permit (principal, action == Action::"export-customer-data", resource) unless { context.params has max_rows };
@id("erring") forbid (principal, action == Action::"export-customer-data", resource) when { context.params has max_rows && context.params.max_rows == 7 && context.broker.active_grants > 2 };
@id("approve-below-5000") @auto_approve permit (principal, action == Action::"export-customer-data", resource) when { context.params has max_rows && context.params.max_rows < 5000 };`,
      },
    ];
    const memoised = compileWith(policies, { preparse: true });
    const plain = compileWith(policies);
    const exportOf = (maxRows: number | undefined, activeGrants: number | null): PolicyRequest => ({
      ...refund(0, 0, 1, 1),
      workload: { id: 'svc-1', kind: 'service', owner: 'o' },
      task: { name: 'export-customer-data', risk: 'high' },
      params: { dataset: 'orders', destination: 's3://x', ...(maxRows === undefined ? {} : { max_rows: maxRows }) },
      broker: { ...refund(0, 0, 1, 1).broker, active_grants: activeGrants },
    });
    const outcomes = new Set<string>();
    for (let pass = 0; pass < 2; pass++) {
      for (const maxRows of [undefined, 6, 7, 8, 999, 1000, 1001, 4999, 5000, 5001]) {
        for (const activeGrants of [null, 2, 3]) {
          const at = `max_rows ${maxRows}, active_grants ${activeGrants}`;
          const { evaluationMicros: _a, ...fromMemo } = evaluate(memoised, exportOf(maxRows, activeGrants));
          const { evaluationMicros: _b, ...fromCedar } = evaluate(plain, exportOf(maxRows, activeGrants));
          expect(fromMemo, at).toEqual(fromCedar);
          expect(evaluateApprover(memoised, exportOf(maxRows, activeGrants)), at).toEqual(evaluateApprover(plain, exportOf(maxRows, activeGrants)));
          outcomes.add(`${fromCedar.outcome} ${fromCedar.determining.join('+')} ${fromCedar.errors.length ? 'errors' : ''}`);
        }
      }
    }
    // An absent active_grants makes "erring" fail at max_rows 7, which fails the evaluation closed.
    expect([...outcomes].sort()).toEqual(['allow small ', 'deny erring ', 'deny erring errors', 'step_up large ', 'step_up unbounded ']);
    // The decision's plan tells max_rows by absent, <7, 7, <1000, 1000, >1000 and active_grants by absent,
    // 2, >2 (6 × 3); the approvers' plan max_rows by absent, <5000, 5000, >5000 (4): one memo holds both.
    expect(memoised.plans['export-customer-data']!.memo!.store.size).toBe(6 * 3 + 4);
  });

  it('keys on the plan, the principal and its attributes, and keeps what a has test sees', () => {
    const compared = [{ path: ['broker', 'n'], kind: 'long', literals: [10] }] as const;
    const key = (id: string, kind: string, broker: Record<string, number>, plan = 'p') =>
      memoKey(plan, compared, { principal: { type: 'Workload', id }, entities: [{ uid: { type: 'Workload', id }, attrs: { kind }, parents: [] }], context: { broker } });
    expect(key('a', 'agent', { n: 1 })).toBe(key('a', 'agent', { n: 9 }));
    expect(key('a', 'agent', { n: 9 })).not.toBe(key('a', 'agent', { n: 10 }));
    expect(key('a', 'agent', { n: 11 })).toBe(key('a', 'agent', { n: 1_000_000 }));
    expect(key('a', 'agent', { n: 1 })).not.toBe(key('a', 'agent', { n: 1 }, 'q'));
    expect(key('a', 'agent', { n: 1 })).not.toBe(key('b', 'agent', { n: 1 }));
    expect(key('a', 'agent', { n: 1 })).not.toBe(key('a', 'ci', { n: 1 }));
    expect(key('a', 'agent', { n: 1 })).not.toBe(key('a', 'agent', {}));
    expect(key('a', 'agent', { n: 1, m: 1 })).not.toBe(key('a', 'agent', { n: 1, m: 2 }));
  });

  it('keeps at most its capacity, dropping the least recently used first, and no over-long question', () => {
    const memo = new AnswerMemo(3);
    const asked: string[] = [];
    const answer = (key: string) => memo.answer(key, () => (asked.push(key), { type: 'failure', errors: [], warnings: [] }) as AuthorizationAnswer).kept;
    expect(['a', 'b', 'c', 'a', 'd'].map(answer)).toEqual([false, false, false, true, false]);
    expect(memo.size).toBe(3);
    // 'b' was the least recently used when 'd' came; 'a', used again, stayed.
    expect(['a', 'c', 'd', 'b'].map(answer)).toEqual([true, true, true, false]);
    expect(asked).toEqual(['a', 'b', 'c', 'd', 'b']);
    const long = 'x'.repeat(2_049);
    expect([long, long].map(answer)).toEqual([false, false]);
    expect(['b', 'c', 'd'].map(answer)).toEqual([true, true, true]);
  });
});
