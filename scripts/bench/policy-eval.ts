// Where a policy evaluation's time goes, one variant of the Cedar call at a time, interleaved so a
// shared, noisy machine loads every variant alike. Run alone: `npx tsx scripts/bench/policy-eval.ts`.
//
// "before" is the call evaluate() made until December 2026: the preparsed schema with
// validateRequest, the whole context and both entities. It is rebuilt here only as the baseline.
import path from 'node:path';
import { preparsePolicySet, preparseSchema, statefulIsAuthorized, type EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { compileDocumentPolicies, loadConfigFolder } from '../../src/config/load-folder.js';
import { buildContext, evaluate } from '../../src/policy/evaluate.js';
import { pickContext } from '../../src/policy/context-reads.js';
import type { PolicyRequest } from '../../src/policy/index.js';
import { REPO_ROOT } from '../lib/broker-process.js';
import { fmt, median } from '../lib/stats.js';
import { demoRequests } from './policy.js';

/** Calls per variant per round, and rounds: enough for a stable median on a loaded 2-core VM. */
const CALLS = 2_000;
const ROUNDS = 7;

const compiled = compileDocumentPolicies(await loadConfigFolder(path.join(REPO_ROOT, 'config/demo')), { preparse: true });
if (preparseSchema(compiled.version, compiled.schema).type !== 'success') throw new Error('schema did not preparse');
// The floor: one trivial policy, no context, no entities. What no change on tessera's side removes.
if (preparsePolicySet('bench:floor', { staticPolicies: { p: 'permit (principal, action, resource);' } }).type !== 'success') throw new Error('floor did not preparse');

const both = (r: PolicyRequest): EntityJson[] => [
  { uid: { type: 'Workload', id: r.workload.id }, attrs: { kind: r.workload.kind, owner: r.workload.owner }, parents: [] },
  { uid: { type: 'Task', id: r.task.name }, attrs: { risk: r.task.risk }, parents: [] },
];
const cedarCall = (r: PolicyRequest, context: ReturnType<typeof buildContext>, schema: boolean) =>
  statefulIsAuthorized({
    principal: { type: 'Workload', id: r.workload.id },
    action: { type: 'Action', id: r.task.name },
    resource: { type: 'Task', id: r.task.name },
    context,
    entities: both(r),
    preparsedPolicySetId: compiled.plans[r.task.name]!.preparsedId!,
    ...(schema ? { preparsedSchemaName: compiled.version, validateRequest: true } : {}),
  });

const variants: Record<string, (r: PolicyRequest) => unknown> = {
  'before: schema + validateRequest, whole context, 2 entities': (r) => cedarCall(r, buildContext(compiled, r), true),
  'no schema, whole context, 2 entities': (r) => cedarCall(r, buildContext(compiled, r), false),
  'no schema, context the policies read, 2 entities': (r) => cedarCall(r, pickContext(buildContext(compiled, r), compiled.plans[r.task.name]!.reads.context), false),
  'after: evaluate() (read context, read entities only)': (r) => evaluate(compiled, r),
  'floor: a trivial policy, empty context, no entities': (r) =>
    statefulIsAuthorized({ principal: { type: 'Workload', id: r.workload.id }, action: { type: 'Action', id: r.task.name }, resource: { type: 'Task', id: r.task.name }, context: {}, entities: [], preparsedPolicySetId: 'bench:floor' }),
};

const requests = demoRequests();
const perCall: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) run(requests[i % requests.length]!);
    // Round 0 warms the wasm tiers up and is not counted.
    if (round > 0) perCall[name]!.push(Number(process.hrtime.bigint() - started) / 1000 / CALLS);
  }
}
console.log(`demo policies: ${compiled.policyIds.length}, ${requests.length} requests (refund + deploy), ${ROUNDS} rounds x ${CALLS} calls`);
for (const [name, xs] of Object.entries(perCall)) {
  console.log(`${name.padEnd(56)} median ${fmt(median(xs)).padStart(5)} µs/call   (min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))})`);
}
