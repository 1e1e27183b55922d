import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import type { Database } from '../../src/db/database.js';
import { randomUUID } from 'node:crypto';
import { Registry } from '../../src/config/registry.js';
import type { Decision } from '../../src/decisions/decider.js';
import type { Principal } from '../../src/identity/authenticate.js';
import { mintRows, type MintInput } from '../../src/grants/mint-grant.js';
import { insertMint, MintWriter } from '../../src/grants/mint.repository.js';
import { BENCH_TASK, CI_WORKLOAD } from '../lib/identities.js';
import { msSince, sleep, summarize, type LatencySummary } from '../lib/stats.js';
import { benchGrant } from '../lib/grant-rows.js';
import { pace } from './paced.js';

export interface RateResult extends LatencySummary {
  rps: number;
}

/** A signing input the size of a broker access token (header + claims, ~600 bytes). */
const TOKEN_SIZED_INPUT = Buffer.from(`eyJhbGciOiJFUzI1NiJ9.${'x'.repeat(560)}`);

/** Runs `op` back to back for `ms` and reports its rate and per-call latency (one core, no contention). */
export async function timeLoop(ms: number, op: () => unknown): Promise<RateResult> {
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  while (msSince(started) < ms) {
    const t = process.hrtime.bigint();
    const r = op();
    if (r instanceof Promise) await r;
    latencies.push(msSince(t));
  }
  return { ...summarize(latencies), rps: latencies.length / (msSince(started) / 1000) };
}

/** Runs `op` from `concurrency` async loops for `ms`: the rate a pool-bound or I/O-bound operation reaches. */
export async function timeConcurrent(ms: number, concurrency: number, op: () => Promise<unknown>): Promise<RateResult> {
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (msSince(started) < ms) {
        const t = process.hrtime.bigint();
        await op();
        latencies.push(msSince(t));
      }
    }),
  );
  return { ...summarize(latencies), rps: latencies.length / (msSince(started) / 1000) };
}

/** ES256 sign + verify of one token-sized input through node:crypto with KeyObjects created once: the physical limit. */
export function nodeCryptoPair(ms: number): Promise<RateResult> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return timeLoop(ms, () => {
    const signature = sign('sha256', TOKEN_SIZED_INPUT, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    if (!verify('sha256', TOKEN_SIZED_INPUT, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('verify failed');
  });
}

/** CPU a unit of work costs when run back to back, and when the thread sleeps between units. */
export interface IdleWake {
  /** CPU µs per unit, back to back. */
  warmMicros: number;
  /**
   * CPU µs per unit with the thread asleep `gapMs` before each, the wake-up included (a broker pays it
   * too), and what the sleep and wake-up alone cost without the work.
   */
  afterIdle: Array<{ gapMs: number; micros: number; sleepAloneMicros: number; ratio: number }>;
}

/**
 * The same compute (3 ES256 pairs and a small JSON round trip, ~0.4 ms) back to back and then with the
 * thread asleep between units, as a broker's event loop sleeps between requests at moderate load. On
 * hardware where idle costs little the ratios stay near 1 (the sleep alone is reported beside them);
 * measured here on a nested VM, 5 ms of idle made the same work cost 1.6-2.2x, which is why an
 * open-loop rate well below the closed-loop maximum still queues.
 */
export async function idleWake(units = 300, gaps = [1, 5]): Promise<IdleWake> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const work = () => {
    for (let i = 0; i < 3; i++) {
      const signature = sign('sha256', TOKEN_SIZED_INPUT, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      verify('sha256', TOKEN_SIZED_INPUT, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    }
    JSON.parse(JSON.stringify({ claims: TOKEN_SIZED_INPUT.toString('latin1') }));
  };
  const cpuMicros = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  for (let i = 0; i < units; i++) work(); // JIT warm-up
  let c = cpuMicros();
  for (let i = 0; i < units * 3; i++) work();
  const warmMicros = (cpuMicros() - c) / (units * 3);
  const afterIdle = [];
  for (const gapMs of gaps) {
    c = cpuMicros();
    for (let i = 0; i < units; i++) await sleep(gapMs);
    const sleepAloneMicros = (cpuMicros() - c) / units;
    c = cpuMicros();
    for (let i = 0; i < units; i++) {
      work();
      await sleep(gapMs);
    }
    const micros = (cpuMicros() - c) / units;
    afterIdle.push({ gapMs, micros, sleepAloneMicros, ratio: micros / warmMicros });
  }
  return { warmMicros, afterIdle };
}

/** The same pair through jose (WebCrypto on Node 20), keys imported once. */
export async function josePair(ms: number): Promise<RateResult> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const priv = await importJWK(privateKey.export({ format: 'jwk' }) as JWK, 'ES256');
  const pub = await importJWK(publicKey.export({ format: 'jwk' }) as JWK, 'ES256');
  const claims = { sub: 'bench', scope: 'deploy:write', pad: 'x'.repeat(400) };
  return timeLoop(ms, async () => {
    const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(priv);
    await jwtVerify(jwt, pub);
  });
}

/** What a bench mint writes: its principal, and one allowed mint's input and grant row at a time, as the broker builds them. */
async function mintFixture(db: Database) {
  const registry = new Registry(db);
  await registry.load();
  const task = registry.snapshot.tasks.get(BENCH_TASK)!;
  const workload = registry.snapshot.workloads.get(CI_WORKLOAD)!;
  const principal: Principal = {
    workload,
    method: 'oidc',
    issuer: 'bench-ci',
    subject: 'repo:bench/api:ref:refs/heads/main',
    claims: { repository: 'bench/api', ref: 'refs/heads/main' },
    tokenAgeSeconds: 3,
    tokenSha256: 'b'.repeat(64),
  };
  const decision = (): Decision => ({
    id: randomUUID(),
    outcome: 'allow',
    reasons: [],
    errors: [],
    determining: ['bench-permit'],
    maxTtlSeconds: 600,
    policyVersion: registry.snapshot.policies?.version ?? null,
    configVersion: registry.snapshot.configVersion,
    signals: { used: [], broker: { requests_last_minute: 40, requests_last_hour: 900, active_grants: 30, task_is_new: false, target_is_new: false, new_params: [], calendars: {} }, identity: { method: 'oidc', issuer: 'bench-ci' } },
    latencyUs: 300,
  });
  const next = (now: Date) => {
    const grant = { ...benchGrant(now), decision_id: null as string | null, watch_basis: null as string | null };
    const m: MintInput = { task, params: grant.params, scopes: grant.scopes, purpose: null, ttlSeconds: 300, decision: decision(), request: { task: BENCH_TASK, params: grant.params }, requestId: randomUUID() };
    grant.decision_id = m.decision.id;
    grant.watch_basis = m.decision.id;
    // As large as a mint's row. It names an observation at the insert, newer than the bench's seeded one,
    // so the sweep's candidates keep these grants: the sweep rows measure them as before.
    grant.watch_fresh = { ...grant.watch_fresh!, basis: m.decision.id };
    return { grant, m };
  };
  return { principal, next };
}

/**
 * Building a mint's rows alone (mintRows: the decision, the usage baseline, the two audit events with
 * their row digests and secret check), one core, inputs made ahead of each timed batch: CPU the
 * request thread spends per mint between the decision and the write.
 */
export async function mintRowsAlone(db: Database, ms: number): Promise<RateResult> {
  const { principal, next } = await mintFixture(db);
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  let busy = 0;
  while (msSince(started) < ms) {
    const now = new Date();
    const batch = Array.from({ length: 500 }, () => next(now));
    for (const { grant, m } of batch) {
      const t = process.hrtime.bigint();
      mintRows(principal, m, grant, now);
      const took = msSince(t);
      latencies.push(took);
      busy += took;
    }
  }
  return { ...summarize(latencies), rps: latencies.length / (busy / 1000) };
}

/**
 * The mint's own write, alone: the statement that inserts the decision, the grant, the usage baseline
 * and the two audit events (src/grants/mint.repository.ts), with the rows a bench mint writes
 * (mintRows), through a pool configured like the broker's, from `concurrency` callers. No identity
 * check, no policy, no signing: the limit the database sets. `shared` writes through MintWriter, as
 * the broker does (callers that commit together share a statement); otherwise one statement each.
 */
export async function rawInsert(db: Database, ms: number, concurrency: number, shared: boolean): Promise<RateResult> {
  return timeConcurrent(ms, concurrency, await mintWrite(db, shared));
}

/** One bench mint's rows written per call, shared through MintWriter or as a statement of its own. */
async function mintWrite(db: Database, shared: boolean): Promise<() => Promise<void>> {
  const writer = new MintWriter(db);
  const { principal, next } = await mintFixture(db);
  return async () => {
    const now = new Date();
    const { grant, m } = next(now);
    const rows = mintRows(principal, m, grant, now);
    if ((await (shared ? writer.write(grant, rows) : insertMint(db, grant, rows))) !== 'inserted') throw new Error('bench workload is not active');
  };
}

/**
 * The mint's write (as rawInsert, through MintWriter) at a fixed rate, evenly spaced like the open-loop
 * mint steps, latency counted from each planned moment: the tail a durable commit alone has on this
 * machine at that rate, which no mint at the same rate can beat.
 */
export async function pacedInsert(db: Database, rate: number, ms: number): Promise<RateResult> {
  const write = await mintWrite(db, true);
  const latencies: number[] = [];
  const started = performance.now();
  await pace(rate, Math.round((rate * ms) / 1000), started, async (plannedAt) => {
    await write();
    latencies.push(performance.now() - plannedAt);
  });
  return { ...summarize(latencies), rps: latencies.length / ((performance.now() - started) / 1000) };
}
