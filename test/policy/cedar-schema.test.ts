import { checkParseSchema } from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it } from 'vitest';
import { generateCedarSchema } from '../../src/policy/cedar-schema.js';
import { signalTypeSpec } from '../../src/policy/signal-type.spec.js';
import { fixtureRegistry } from './support.js';

describe('generateCedarSchema', () => {
  const registry = fixtureRegistry();
  const schema = generateCedarSchema(registry);
  const ns = schema['']!;

  it('is a schema Cedar accepts', () => {
    expect(checkParseSchema(schema)).toEqual({ type: 'success' });
  });

  it('has one action per task, Workload principal and Task resource', () => {
    expect(Object.keys(ns.actions)).toEqual(['deploy-prod', 'export-customer-data', 'refund-payment']);
    expect(ns.actions['deploy-prod']!.appliesTo).toMatchObject({ principalTypes: ['Workload'], resourceTypes: ['Task'] });
    expect(ns.entityTypes.Workload).toEqual({
      shape: { type: 'Record', attributes: { kind: { type: 'String' }, owner: { type: 'String' } } },
    });
    expect(ns.entityTypes.Task).toEqual({ shape: { type: 'Record', attributes: { risk: { type: 'String' } } } });
  });

  it('types params: integers as Long, other numbers as decimal, optional params as optional attributes', () => {
    expect(ns.actions['export-customer-data']!.appliesTo!.context).toMatchObject({
      attributes: {
        params: {
          attributes: {
            dataset: { type: 'String', required: true },
            destination: { type: 'String', required: true },
            max_rows: { type: 'Long', required: false },
          },
        },
        signals: { type: 'Signals' },
        identity: { type: 'Identity' },
        broker: { type: 'Broker' },
        purpose: { type: 'String' },
      },
    });
    expect(ns.actions['refund-payment']!.appliesTo!.context).toMatchObject({
      attributes: { params: { attributes: { amount: { type: 'Extension', name: 'decimal', required: true } } } },
    });
  });

  it('makes every signal optional and every calendar a Bool', () => {
    expect(ns.commonTypes!.Signals).toEqual({
      type: 'Record',
      attributes: {
        runner_trust: { type: 'String', required: false },
        signing_key_current: { type: 'Boolean', required: false },
      },
    });
    expect(ns.commonTypes!.Broker).toMatchObject({
      attributes: {
        requests_last_minute: { type: 'Long' },
        new_params: { type: 'Set', element: { type: 'String' } },
        calendars: { type: 'Record', attributes: { change_window: { type: 'Boolean' } } },
      },
    });
  });

  it('does not depend on the order of its input', () => {
    const reversed = generateCedarSchema({
      tasks: [...registry.tasks].reverse(),
      signalTypes: [...registry.signalTypes].reverse(),
      calendars: [...registry.calendars].reverse(),
    });
    expect(JSON.stringify(reversed)).toBe(JSON.stringify(schema));
  });
});

describe('signalTypeSpec', () => {
  const base = {
    name: 'edr_verdict',
    description: 'EDR verdict for the host',
    reason: 'a compromised host must not receive credentials',
    subject_kind: 'host',
    value: { type: 'string', enum: ['clean', 'infected'] },
    sources: ['edr'],
    max_age_seconds: 300,
    subject_claim: 'runner_name',
  };

  it('accepts a complete signal type', () => {
    expect(signalTypeSpec.parse(base).name).toBe('edr_verdict');
  });

  it('requires a host signal to name the identity claim that identifies the host', () => {
    const { subject_claim: _claim, ...noClaim } = base;
    expect(signalTypeSpec.safeParse(noClaim).success).toBe(false);
    expect(signalTypeSpec.safeParse({ ...noClaim, subject_kind: 'workload' }).success).toBe(true);
  });

  it('requires a reason, snake_case names, a source and no unknown keys', () => {
    const { reason: _reason, ...noReason } = base;
    expect(signalTypeSpec.safeParse(noReason).success).toBe(false);
    expect(signalTypeSpec.safeParse({ ...base, name: 'EDR-verdict' }).success).toBe(false);
    expect(signalTypeSpec.safeParse({ ...base, sources: [] }).success).toBe(false);
    expect(signalTypeSpec.safeParse({ ...base, extra: 1 }).success).toBe(false);
  });
});
