import path from 'node:path';
import { compileDocumentPolicies, loadConfigFolder } from '../../src/config/load-folder.js';
import { evaluate, type CompiledPolicySet, type PolicyRequest } from '../../src/policy/index.js';
import { REPO_ROOT } from '../lib/broker-process.js';
import { BENCH_TASK, CI_WORKLOAD } from '../lib/identities.js';
import { timeLoop, type RateResult } from './raw-limits.js';
import { scrape } from './broker-metrics.js';

/** The demo configuration: its tasks, signal types, calendars and policies, as the broker compiles them. */
const DEMO_CONFIG = path.join(REPO_ROOT, 'config/demo');

/** Evaluations run before the timed ones. */
const WARM_UP_MS = 2_000;

export interface PolicyBench extends RateResult {
  version: string;
  policies: number;
  compileMs: number;
  outcomes: Record<string, number>;
}

/** Compiles the demo policies once, then times evaluate() alone over a mix of allowed and denied requests. */
export function benchPolicy(ms: number): Promise<PolicyBench> {
  return timePolicies(ms, DEMO_CONFIG, demoRequests());
}

/**
 * The same for the bench configuration's policies and the request every mint step sends. With the
 * memo, as the broker runs (every call after the first is answered from it); without, every call
 * asks Cedar, as a question the memo has not seen does.
 */
export function benchMintPolicy(ms: number, configDir: string, memo = true): Promise<PolicyBench> {
  const identity = { issuer: 'bench-ci', subject: 'repo:bench/api:ref:refs/heads/main', token_age_seconds: 3, claims: { ref: 'refs/heads/main', repository: 'bench/api' } };
  const broker = { requests_last_minute: 40, requests_last_hour: 900, active_grants: 30, task_is_new: false, target_is_new: false, new_params: [], calendars: {} };
  return timePolicies(ms, configDir, [
    { workload: { id: CI_WORKLOAD, kind: 'ci', owner: 'bench' }, task: { name: BENCH_TASK, risk: 'medium' }, params: { service: 'api' }, purpose: '', identity, signals: {}, broker },
  ], memo);
}

/** `compiled` with its plans' memos taken away: each evaluation calls Cedar on the preparsed set. */
function withoutMemo(compiled: CompiledPolicySet): CompiledPolicySet {
  return { ...compiled, plans: Object.fromEntries(Object.entries(compiled.plans).map(([task, { memo: _, ...plan }]) => [task, plan])) };
}

async function timePolicies(ms: number, dir: string, requests: PolicyRequest[], memo = true): Promise<PolicyBench> {
  const doc = await loadConfigFolder(dir);
  const t = performance.now();
  const preparsed = compileDocumentPolicies(doc, { preparse: true });
  const compileMs = performance.now() - t;
  const compiled = memo ? preparsed : withoutMemo(preparsed);
  let i = 0;
  // Untimed first: the mint steps are measured warm (after a warm-up step), and so is this. Timed
  // cold, the first 2 s (JIT, wasm tier-up) averaged 274-292 µs a call, later ones 133-202 µs.
  await timeLoop(WARM_UP_MS, () => evaluate(compiled, requests[i++ % requests.length]!));
  const outcomes: Record<string, number> = {};
  const r = await timeLoop(ms, () => {
    const d = evaluate(compiled, requests[i++ % requests.length]!);
    outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
  });
  return { ...r, version: compiled.version.slice(0, 12), policies: compiled.policyIds.length, compileMs, outcomes };
}

/** Refunds (allowed, over the limit, rate spike) and deploys (window closed, runner trusted or not). */
export function demoRequests(): PolicyRequest[] {
  const broker = { requests_last_minute: 0, requests_last_hour: 0, active_grants: 0, task_is_new: false, target_is_new: false, new_params: [], calendars: { change_window: true } };
  const identity = { issuer: 'ci', subject: 'repo:acme/api', token_age_seconds: 3, claims: { ref: 'refs/heads/main', repository: 'acme/api' } };
  const out: PolicyRequest[] = [];
  for (let i = 0; i < 64; i++) {
    out.push({
      workload: { id: 'agent-1', kind: 'agent', owner: 'ops' },
      task: { name: 'refund-payment', risk: 'medium' },
      params: { order_id: `o-${i}`, amount: (i * 7) % 150 },
      purpose: 'refund',
      identity,
      signals: {},
      broker: { ...broker, requests_last_minute: i % 14 },
    });
    out.push({
      workload: { id: 'ci-api', kind: 'ci', owner: 'api-team' },
      task: { name: 'deploy-prod', risk: 'high' },
      params: { service: 'api' },
      purpose: 'release',
      identity,
      signals: i % 3 ? { runner_trust: 'trusted' } : {},
      broker: { ...broker, calendars: { change_window: i % 4 !== 0 } },
    });
  }
  return out;
}

/** The broker's own account of its policy evaluations so far, and of how their Cedar questions were answered. */
export async function brokerPolicyTime(url: string): Promise<{ count: number; seconds: number; cedarCalls: number; memoAnswers: number }> {
  const values = await scrape(url);
  return {
    count: values.get('tessera_policy_evaluation_seconds_count') ?? 0,
    seconds: values.get('tessera_policy_evaluation_seconds_sum') ?? 0,
    cedarCalls: values.get('tessera_policy_cedar_calls_total') ?? 0,
    memoAnswers: values.get('tessera_policy_memo_answers_total') ?? 0,
  };
}
