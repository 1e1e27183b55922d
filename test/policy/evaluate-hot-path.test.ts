import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it, vi } from 'vitest';
import { evaluate } from '../../src/policy/evaluate.js';
import { compileWith, fixturePolicies } from './support.js';

// Count every Cedar entry point so the test can prove evaluation reuses the preparsed set.
vi.mock('@cedar-policy/cedar-wasm/nodejs', async (importOriginal) => {
  const real = await importOriginal<typeof cedar>();
  return Object.fromEntries(Object.entries(real).map(([k, v]) => [k, typeof v === 'function' ? vi.fn(v as (...a: unknown[]) => unknown) : v]));
});

const PARSING = ['preparsePolicySet', 'preparseSchema', 'validate', 'policySetTextToParts', 'policyToJson', 'checkParseSchema', 'isAuthorized'] as const;
const broker = { requests_last_minute: 0, requests_last_hour: 0, active_grants: 0, task_is_new: false, target_is_new: false, new_params: [], calendars: { change_window: false } };
const refund = (i: number) => ({
  workload: { id: 'agent-1', kind: 'agent', owner: 'o' },
  task: { name: 'refund-payment', risk: 'medium' },
  params: { order_id: `o-${i}`, amount: (i % 200) + 0.5 },
  purpose: 'refund',
  identity: { issuer: 'i', subject: 's', token_age_seconds: 1, claims: { ref: 'refs/heads/main' } },
  signals: { runner_trust: 'trusted' },
  broker: { ...broker, requests_last_minute: i % 12 },
});

describe('evaluate on the hot path', () => {
  it('parses nothing per call: 1000 evaluations after one compile', () => {
    const compiled = compileWith(fixturePolicies(), { preparse: true });
    vi.clearAllMocks();
    const started = process.hrtime.bigint();
    const outcomes = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const d = evaluate(compiled, refund(i));
      outcomes.add(`${i % 200 < 100 && i % 12 <= 10 ? 'allow' : 'deny'}=${d.outcome}`);
    }
    const micros = Number((process.hrtime.bigint() - started) / 1000n);
    console.log(`1000 evaluations: ${micros} µs total, ${(micros / 1000).toFixed(1)} µs each`);
    expect([...outcomes].sort()).toEqual(['allow=allow', 'deny=deny']);
    // Cedar is asked once per distinct question: the refund policies see the amount only as below, at
    // or above their literal 100.00, and the minute count likewise against 10; the memo answers the rest.
    const questions = new Set(Array.from({ length: 1000 }, (_, i) => `${Math.sign((i % 200) + 0.5 - 100)} ${Math.sign((i % 12) - 10)}`));
    expect(vi.mocked(cedar.statefulIsAuthorized)).toHaveBeenCalledTimes(questions.size);
    for (const fn of PARSING) expect(vi.mocked(cedar[fn]), fn).not.toHaveBeenCalled();
  });

  it('hands Cedar only what the task policies read, and no schema', () => {
    const compiled = compileWith(fixturePolicies(), { preparse: true });
    vi.clearAllMocks();
    evaluate(compiled, refund(1));
    const call = vi.mocked(cedar.statefulIsAuthorized).mock.calls[0]![0];
    // The refund policies read principal.kind, params.amount and the one-minute rate: nothing else.
    expect(call.context).toEqual({ params: { amount: { __extn: { fn: 'decimal', arg: '1.5000' } } }, broker: { requests_last_minute: 1 } });
    expect(call.entities).toEqual([{ uid: { type: 'Workload', id: 'agent-1' }, attrs: { kind: 'agent', owner: 'o' }, parents: [] }]);
    expect(call).not.toHaveProperty('preparsedSchemaName');
  });

  it('preparses a version once, however often it is compiled, and never unless asked', () => {
    compileWith(fixturePolicies(), { preparse: true });
    vi.clearAllMocks();
    const a = compileWith(fixturePolicies(), { preparse: true });
    const b = compileWith();
    expect(a.version).toBe(b.version);
    const candidate = compileWith([{ file: 'c.cedar', text: 'permit (principal, action == Action::"refund-payment", resource);' }]);
    expect(vi.mocked(cedar.preparsePolicySet)).toHaveBeenCalledTimes(0);
    expect(vi.mocked(cedar.preparseSchema)).toHaveBeenCalledTimes(0);
    // A set that was not preparsed is evaluated by parsing its policies per call instead.
    expect(evaluate(candidate, refund(500)).outcome).toBe('allow');
    expect(vi.mocked(cedar.isAuthorized)).toHaveBeenCalledTimes(1);
    expect(vi.mocked(cedar.statefulIsAuthorized)).toHaveBeenCalledTimes(0);
  });
});
