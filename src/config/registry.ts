import type { z } from 'zod';
import type { Database } from '../db/database.js';
import type { IssuerSpec, TaskSpec, WorkloadSpec } from './spec.js';
import { readRegistryEpoch, readRegistryRows, type WorkloadRow } from './registry.repository.js';
import { compileParamsSchema } from './task-params.js';
import { compilePolicySet, type CompiledPolicySet, type SignalTypeSpec } from '../policy/index.js';
import { documentPolicyInput } from './load-folder.js';
import type { SignalSourceSpec } from '../signals/source.spec.js';
import type { CalendarSpec } from '../signals/calendar.js';
import { settingsSpec, type ConfigDocument } from './spec.js';

/** How often a replica checks whether the registry changed (one indexed single-row read). */
export const REGISTRY_POLL_MS = 1_000;

type ClaimTest = (value: unknown) => boolean;

export interface CompiledBinding {
  workload: WorkloadRow;
  subject: string | undefined;
  claims: Array<[string, ClaimTest]>;
}

export interface CompiledTask {
  spec: TaskSpec;
  params: z.ZodType<Record<string, unknown>>;
  allows(workloadId: string): boolean;
}

/** An immutable, compiled view of issuers, workloads and tasks: what the request path reads. */
export interface RegistrySnapshot {
  epoch: number;
  issuers: Map<string, IssuerSpec>;
  issuerByIss: Map<string, IssuerSpec>;
  issuerByTrustDomain: Map<string, IssuerSpec>;
  workloads: Map<string, WorkloadRow>;
  bindingsByIssuer: Map<string, CompiledBinding[]>;
  tasks: Map<string, CompiledTask>;
  signalTypes: Map<string, SignalTypeSpec>;
  signalSources: Map<string, SignalSourceSpec>;
  calendars: CalendarSpec[];
  settings: ConfigDocument['settings'];
  configVersion: string | null;
  /**
   * The compiled policy set, or undefined when no policies are configured (then a task's workload
   * list alone decides). `policyError` is set when the stored policies no longer compile against the
   * registry (e.g. a task edited since): the broker then denies every request, failing closed.
   */
  policies: CompiledPolicySet | undefined;
  policyError: string | undefined;
}

/** Compiles a claim condition once: exact strings compare equal, patterns are anchored at both ends. */
function claimTest(cond: WorkloadSpec['bindings'][number]['claims'][string]): ClaimTest {
  if (typeof cond === 'string') return (v) => v === cond;
  const re = new RegExp(`^(?:${cond.pattern})$`);
  return (v) => typeof v === 'string' && re.test(v);
}

/** Builds a snapshot from registry rows. */
export function compileRegistry(rows: Awaited<ReturnType<typeof readRegistryRows>>): RegistrySnapshot {
  const issuers = new Map(rows.issuers.map((i) => [i.id, i]));
  const bindingsByIssuer = new Map<string, CompiledBinding[]>();
  for (const w of rows.workloads) {
    for (const b of w.spec.bindings) {
      const list = bindingsByIssuer.get(b.issuer) ?? [];
      list.push({ workload: w, subject: b.subject, claims: Object.entries(b.claims).map(([k, c]) => [k, claimTest(c)]) });
      bindingsByIssuer.set(b.issuer, list);
    }
  }
  const tasks = new Map<string, CompiledTask>();
  for (const t of rows.tasks) {
    const exact = new Set(t.workloads.filter((w) => !w.endsWith('*')));
    const prefixes = t.workloads.filter((w) => w.endsWith('*')).map((w) => w.slice(0, -1));
    tasks.set(t.name, {
      spec: t,
      params: compileParamsSchema(t),
      allows: (id) => exact.has(id) || prefixes.some((p) => id.startsWith(p)),
    });
  }
  const doc = rows.document;
  const signalTypes = doc?.signal_types ?? [];
  const calendars = doc?.calendars ?? [];
  let policies: CompiledPolicySet | undefined;
  let policyError: string | undefined;
  if (doc?.policies.length) {
    try {
      policies = compilePolicySet(documentPolicyInput({ ...doc, tasks: rows.tasks }), { preparse: true });
    } catch (err) {
      policyError = (err as { problems?: string[] }).problems?.join('; ') ?? (err as Error).message;
    }
  }
  return {
    epoch: rows.epoch,
    signalTypes: new Map(signalTypes.map((t) => [t.name, t])),
    signalSources: new Map((doc?.signal_sources ?? []).map((s) => [s.id, s])),
    calendars,
    settings: doc?.settings ?? settingsSpec.parse({}),
    configVersion: rows.configVersion,
    policies,
    policyError,
    issuers,
    issuerByIss: new Map(rows.issuers.filter((i) => i.issuer).map((i) => [i.issuer!, i])),
    issuerByTrustDomain: new Map(rows.issuers.filter((i) => i.trust_domain).map((i) => [i.trust_domain!, i])),
    workloads: new Map(rows.workloads.map((w) => [w.id, w])),
    bindingsByIssuer,
    tasks,
  };
}

/**
 * Holds the current snapshot and replaces it when the registry epoch moves (a config apply or a
 * workload status change on any replica). The request path never reads registry tables.
 */
export class Registry {
  #snapshot: RegistrySnapshot | undefined;
  #timer: NodeJS.Timeout | undefined;
  #maxAges = '';
  #maxAgesGeneration = 0;

  constructor(
    private readonly db: Database,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get snapshot(): RegistrySnapshot {
    if (!this.#snapshot) throw new Error('Registry.load() has not run');
    return this.#snapshot;
  }

  async load(): Promise<void> {
    const next = compileRegistry(await readRegistryRows(this.db));
    const maxAges = JSON.stringify([...next.signalTypes.values()].map((t) => [t.name, t.max_age_seconds]).sort());
    if (this.#snapshot && maxAges !== this.#maxAges) this.#maxAgesGeneration++;
    this.#maxAges = maxAges;
    this.#snapshot = next;
  }

  /**
   * Counts the loads that changed a signal type's maximum age (or the set of types): a grant's due_at
   * was worked out with the ages of its decision's time, so the re-evaluation sweep works them all out
   * again when this moves. A count, not the ages: ages changed and changed back still move it.
   */
  get maxAgesGeneration(): number {
    return this.#maxAgesGeneration;
  }

  /** Reloads if the epoch moved; cheap when nothing changed. */
  async refreshIfChanged(): Promise<boolean> {
    const epoch = await readRegistryEpoch(this.db);
    if (this.#snapshot && epoch === this.#snapshot.epoch) return false;
    await this.load();
    return true;
  }

  startPolling(intervalMs = REGISTRY_POLL_MS): void {
    this.#timer = setInterval(() => this.refreshIfChanged().catch(this.onError), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
