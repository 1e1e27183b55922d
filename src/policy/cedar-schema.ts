import type { SchemaJson, TypeOfAttribute } from '@cedar-policy/cedar-wasm/nodejs';
import type { ParamSpec, TaskSpec } from '../config/spec.js';
import { IDENTITY_CLAIMS } from './policy-request.js';
import type { SignalTypeSpec, SignalValueSpec } from './signal-type.spec.js';

/**
 * How a JSON value maps onto Cedar. Integer numbers are `Long`; other numbers are `decimal`
 * (4 fractional digits), because a Long would silently drop the fraction of an amount like 99.5.
 */
export type CedarKind = 'string' | 'long' | 'decimal' | 'boolean';

/** The slice of a task the schema needs; a full TaskSpec fits. */
export type PolicyTask = Pick<TaskSpec, 'name' | 'params' | 'risk'>;
/** The slice of a signal type the schema needs; a full SignalTypeSpec fits. */
export type PolicySignalType = Pick<SignalTypeSpec, 'name' | 'value'>;

/** What the schema is generated from. */
export interface SchemaInput {
  tasks: PolicyTask[];
  signalTypes: PolicySignalType[];
  calendars: string[];
  /** Identity-token claims policy may read beyond IDENTITY_CLAIMS (settings.identity_claims). */
  identityClaims?: readonly string[];
}

/** Every identity-token claim policy may read: the built-in ones and the configured ones, sorted. */
export function policyClaims(input: Pick<SchemaInput, 'identityClaims'>): string[] {
  return [...new Set([...IDENTITY_CLAIMS, ...(input.identityClaims ?? [])])].sort();
}

/** Cedar kinds of every param (per task) and signal, so the evaluator can encode decimals. */
export interface ValueKinds {
  params: Record<string, Record<string, CedarKind>>;
  signals: Record<string, CedarKind>;
}

/** Calendar names become attribute names (`context.broker.calendars.change_window`). */
export const CALENDAR_NAME = /^[a-z][a-z0-9_]{0,63}$/;

const CEDAR_TYPE: Record<CedarKind, TypeOfAttribute<string>> = {
  string: { type: 'String' },
  long: { type: 'Long' },
  decimal: { type: 'Extension', name: 'decimal' },
  boolean: { type: 'Boolean' },
};

/** The Cedar kind of a task param's values. */
export function paramKind(p: ParamSpec): CedarKind {
  if (p.type === 'number') return p.integer ? 'long' : 'decimal';
  return p.type;
}

/** The Cedar kind of a signal type's values. */
export function signalKind(v: SignalValueSpec): CedarKind {
  if (v.type === 'number') return v.integer ? 'long' : 'decimal';
  return v.type;
}

const byName = <T extends { name: string }>(items: T[]) => [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** Cedar kinds of every task param and signal type. */
export function valueKinds(input: Pick<SchemaInput, 'tasks' | 'signalTypes'>): ValueKinds {
  return {
    params: Object.fromEntries(
      input.tasks.map((t) => [t.name, Object.fromEntries(Object.entries(t.params).map(([k, p]) => [k, paramKind(p)]))]),
    ),
    signals: Object.fromEntries(input.signalTypes.map((s) => [s.name, signalKind(s.value)])),
  };
}

const record = (attributes: Record<string, TypeOfAttribute<string>>): TypeOfAttribute<string> => ({
  type: 'Record',
  attributes,
});

/**
 * The Cedar schema (JSON form, empty namespace) for these tasks, signal types and calendars.
 * Every signal is an optional attribute, so policies must guard reads with `has`; a missing or stale
 * signal is absent and a policy reading an unregistered one fails validation. Input order does not
 * matter: entries are sorted, so equal registries give equal schemas (and equal policy versions).
 */
export function generateCedarSchema(input: SchemaInput): SchemaJson<string> {
  const kinds = valueKinds(input);
  const signals = record(
    Object.fromEntries(byName(input.signalTypes).map((s) => [s.name, { ...CEDAR_TYPE[kinds.signals[s.name]!], required: false }])),
  );
  const identity = record({
    issuer: CEDAR_TYPE.string,
    subject: CEDAR_TYPE.string,
    token_age_seconds: CEDAR_TYPE.long,
    claims: record(Object.fromEntries(policyClaims(input).map((c) => [c, { ...CEDAR_TYPE.string, required: false }]))),
  });
  const broker = record({
    requests_last_minute: CEDAR_TYPE.long,
    requests_last_hour: CEDAR_TYPE.long,
    active_grants: CEDAR_TYPE.long,
    task_is_new: CEDAR_TYPE.boolean,
    target_is_new: CEDAR_TYPE.boolean,
    new_params: { type: 'Set', element: CEDAR_TYPE.string },
    calendars: record(Object.fromEntries([...input.calendars].sort().map((c) => [c, CEDAR_TYPE.boolean]))),
  });
  const actions = Object.fromEntries(
    byName(input.tasks).map((t) => {
      const params = record(
        Object.fromEntries(
          Object.entries(t.params)
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([k, p]) => [k, { ...CEDAR_TYPE[kinds.params[t.name]![k]!], required: p.required }]),
        ),
      );
      const context = record({
        params,
        signals: { type: 'Signals' },
        identity: { type: 'Identity' },
        broker: { type: 'Broker' },
        purpose: CEDAR_TYPE.string,
      });
      return [t.name, { appliesTo: { principalTypes: ['Workload'], resourceTypes: ['Task'], context } }];
    }),
  );
  return {
    '': {
      commonTypes: { Signals: signals, Identity: identity, Broker: broker },
      entityTypes: {
        Workload: { shape: record({ kind: CEDAR_TYPE.string, owner: CEDAR_TYPE.string }) },
        Task: { shape: record({ risk: CEDAR_TYPE.string }) },
      },
      actions,
    },
  };
}
