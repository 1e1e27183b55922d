// npm run bench: the broker's throughput and latency against the machine's raw limits, measured in one run.
import { describeError } from './lib/describe-error.js';
import { wantsHelp } from '../src/config/env.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createDatabase, type Database } from '../src/db/database.js';
import { sealAll, untilSealed } from './lib/seal.js';
import { REPO_ROOT, spawnBroker, spawnServer, type BrokerProcess } from './lib/broker-process.js';
import { startScratchPostgres, type ScratchPostgres } from './lib/postgres.js';
import { machineCpuSeconds } from './lib/proc.js';
import { benchAgent, seedBenchSignal, BENCH_SIGNAL_MAX_AGE, startBenchIssuer, writeBenchConfig, IDENTITY_POOL, MINT_BODY } from './lib/identities.js';
import { fmt, median, sleep } from './lib/stats.js';
import { missingRows } from './drill/load.js';
import { cannon, type StepResult } from './bench/cannon.js';
import { paced } from './bench/paced.js';
import { idleWake, mintRowsAlone, nodeCryptoPair, josePair, pacedInsert, rawInsert } from './bench/raw-limits.js';
import { benchVerify } from './bench/verify.js';
import { benchMintPolicy, benchPolicy, brokerPolicyTime } from './bench/policy.js';
import { loopBetween, mintLatencyBetween, scrape } from './bench/broker-metrics.js';
import { benchExpirySweep } from './bench/expiry-sweep.js';
import { benchReevaluationSweep } from './bench/reevaluation-sweep.js';
import { ARRIVAL_LOOKBACK_MS } from '../src/decisions/reevaluation.js';
import { END_BATCH_SIZE } from '../src/grants/end-grants.js';
import { summarizeProfile } from './bench/profile.js';
import { composedCeiling, withMachineCost } from './bench/machine-cost.js';
import { chartSvg, table, type Row } from './bench/report.js';

/** Seconds per load step: long enough for a stable p99 at a few thousand req/s, short enough for 2 cores. */
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 6);
const CONCURRENCY = [1, 8, 32, 128];
/** Rounds of raw INSERT then 32-client mint, back to back, for the throughput target's ratio. */
const RATIO_ROUNDS = 3;
const RATIO_STEP_SECONDS = 4;
/** Open-loop steps, as shares of the max mint rate: the target's 70 %, and lighter loads beside it. */
const OPEN_LOOP_SHARES = [0.3, 0.5, 0.7];
/** Load before the first measured mint step, and before the profile: long enough for the JIT to settle. */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 30);
/** The re-evaluation sweep's cadence (its job runs every 5 s) and a run that ends within 5 s more (one took about 1 s at 40,000 candidates). */
const SWEEP_INTERVAL_MS = 10_000;
/** How long the profiled broker may take to write its profile after the second signal. */
const PROFILE_WRITE_MS = 10_000;
const EXPIRY_GRANTS = 100_000;
const EXPIRY_BATCHES = [END_BATCH_SIZE, 1_000, 5_000];
/** Stop by ourselves even if something hangs. */
const WATCHDOG_MS = 9 * 60_000;

/** A mint step's policy evaluations as the broker timed them, and their share of its CPU over the step. */
interface InBrokerPolicy {
  evaluations: number;
  microsPerCall: number;
  shareOfCpu: number;
  /** Of the step's Cedar questions: how many Cedar answered, and how many the policy memo did. */
  cedarCalls: number;
  memoAnswers: number;
}

/** Average cores each party used over a step. */
interface CoreShare {
  broker: number;
  /** The broker's main thread alone: the one that runs every request's JavaScript. */
  requestThread: number;
  /** Cores' worth of time the request thread was runnable but had no core (it had work and waited). */
  requestThreadWaiting: number;
  postgres: number;
  /** This process: the load generator (and the fake CI issuer, idle once its JWKS is cached). */
  loadGenerator: number;
  machine: number;
  steal: number;
}

/** Starts measuring who uses the machine's cores; the returned function ends the measurement. */
function coreSplit(broker: BrokerProcess, pg: ScratchPostgres): () => CoreShare {
  const started = performance.now();
  const b = broker.cpuSeconds();
  const rt = broker.requestThreadCpuSeconds();
  const rw = broker.requestThreadWaitSeconds();
  const p = pg.cpuSeconds();
  const me = process.cpuUsage();
  const m = machineCpuSeconds();
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(me);
    const m2 = machineCpuSeconds();
    return {
      broker: (broker.cpuSeconds() - b) / seconds,
      requestThread: (broker.requestThreadCpuSeconds() - rt) / seconds,
      requestThreadWaiting: (broker.requestThreadWaitSeconds() - rw) / seconds,
      postgres: (pg.cpuSeconds() - p) / seconds,
      loadGenerator: (used.user + used.system) / 1e6 / seconds,
      machine: (m2.busy - m.busy) / seconds,
      steal: (m2.steal - m.steal) / seconds,
    };
  };
}

/** Longest wait for the broker's own sealer to drain the outbox between steps. */
const SETTLE_MAX_MS = 30_000;
const QUIET_MS = 2_000;

/** Waits until the broker's sealer has chained every staged audit event (or SETTLE_MAX_MS), then QUIET_MS more. */
async function settle(db: Database): Promise<{ pending: number; waitedMs: number }> {
  const started = Date.now();
  const pending = await untilSealed(db, SETTLE_MAX_MS);
  const waitedMs = Date.now() - started;
  await sleep(QUIET_MS);
  return { pending, waitedMs };
}

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const USAGE = `Usage: npm run bench

Starts a scratch Postgres, a CI issuer and broker processes, and measures in one run (about 7-12
minutes on 2 cores; progress on stderr):
  - the machine's raw limits: ES256 sign+verify (node:crypto and jose), the mint's INSERT alone
    (shared and one statement each), an express hello-world;
  - mint at 1, 8, 32 and 128 clients, and open loop at 30, 50 and 70 % of the max rate (client
    latency, the broker's own from /metrics, its event loop and GC), with the mint's commit alone
    at the 70 % rate; RFC 7523 assertions; two replicas; the re-evaluation sweep;
  - downstream verification through tessera/verify, policy evaluation, the expiry sweep of
    100,000 grants, a CPU profile of the mint path;
then prints a table and the targets (PASS/MISS), and writes bench-results/<time>.json, a chart
(<time>-mint.svg) and the profile (<time>-profile/).

Environment: BENCH_STEP_SECONDS (seconds per step, default ${STEP_SECONDS}), BENCH_WARMUP_SECONDS
(warm-up at 32 clients, default ${WARMUP_SECONDS}). Run it on a quiet machine: other load shows up as
the broker's. See also npm run bench:ab (this checkout against another build) and npm run drill.`;

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  if (wantsHelp(args)) return void console.log(USAGE);
  if (args.length) {
    console.error(`bench: unknown argument(s) ${args.join(' ')}\n\n${USAGE}`);
    process.exit(2);
  }
  const run = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = path.join(REPO_ROOT, 'bench-results');
  const profileDir = path.join(outDir, `${run}-profile`);
  await mkdir(profileDir, { recursive: true });
  const children: BrokerProcess[] = [];
  const watchdog = setTimeout(() => {
    log('watchdog: bench exceeded its time budget, stopping');
    for (const c of children) c.child.kill('SIGKILL');
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  log('starting Postgres, the CI issuer and a broker process');
  const pg = await startScratchPostgres('bench');
  const issuer = await startBenchIssuer();
  const agent = benchAgent();
  const configDir = await writeBenchConfig(path.join(pg.dir, 'config'), issuer, agent);
  const kek = randomBytes(32).toString('base64url');
  // The broker's role and pool settings (max 10, same timeouts): the raw INSERT runs as the broker would.
  const { db } = createDatabase({ url: pg.broker.databaseUrl });
  const { db: superuser } = createDatabase({ url: pg.url });
  const rows: Row[] = [];
  try {
    const broker = await spawnBroker({ ...pg.broker, configDir, kek });
    children.push(broker);
    await seedBenchSignal(broker.url);
    const signalSeededAt = Date.now();

    log('raw limits: ES256 through node:crypto and jose, the grant INSERT, express hello-world');
    const nodePair = await withMachineCost(() => nodeCryptoPair(2_000));
    const jose = await josePair(2_000);
    const wake = await idleWake();
    // Policy alone runs here, on a quiet machine: after the load steps Postgres is still checkpointing.
    log('policy evaluation alone (demo policies, compiled once)');
    const policy = await benchPolicy(2_000);
    const mintPolicy = await withMachineCost(() => benchMintPolicy(2_000, configDir));
    const mintPolicyCedar = await benchMintPolicy(2_000, configDir, false);
    const rowsAlone = await mintRowsAlone(db, 2_000);
    // The limit is the write as the broker does it (shared statements); one statement per mint beside it.
    // Its cost includes chaining the audit events it staged (the sealer's work, which a mint causes too),
    // and they are chained now so that the broker's sealer does not carry them into the mint steps.
    const insert = await withMachineCost(() => rawInsert(db, 5_000, 32, true), () => sealAll(db));
    const insertAlone = await rawInsert(db, 5_000, 32, false);
    await sealAll(db);
    const hello = await spawnServer(['--import', 'tsx', 'scripts/bench/hello-server.ts'], () => ({}), '/');
    children.push(hello);
    const helloRun = await withMachineCost(() => cannon({ url: hello.url, connections: 32, durationSeconds: STEP_SECONDS, headers: () => ({}) }));
    await hello.stop();
    const limit = Math.min(nodePair.rps, insert.rps);
    const limits = (rps: number) => ({ crypto: rps / nodePair.rps, insert: rps / insert.rps, hello: rps / helloRun.rps });
    const limitName = nodePair.rps < insert.rps ? 'node:crypto pair' : 'raw INSERT';
    rows.push(
      { scenario: 'raw ES256 sign+verify node:crypto', clients: 1, ...nodePair, note: 'physical limit, 1 core' },
      { scenario: 'raw ES256 sign+verify jose', clients: 1, ...jose, ratio: jose.rps / nodePair.rps, vs: 'node:crypto pair', note: 'WebCrypto' },
      { scenario: 'raw mint INSERT (pool 10)', clients: 32, ...insert, note: 'the mint write alone, as the broker writes it: shared statements; decision, grant, usage, 2 audit events' },
      { scenario: 'raw mint INSERT, one statement each', clients: 32, ...insertAlone, ratio: insertAlone.rps / insert.rps, vs: 'raw INSERT', note: 'the same rows, a statement and a commit per mint' },
      { scenario: 'express hello-world', clients: 32, ...helloRun },
      ...wake.afterIdle.map((w) => ({ scenario: `same compute after ${w.gapMs} ms idle`, clients: 1, ratio: w.ratio, vs: 'back to back', note: `${fmt(w.micros)} µs CPU a unit, wake-up included, against ${fmt(wake.warmMicros)} µs back to back; the sleep alone ${fmt(w.sleepAloneMicros)} µs` })),
    );

    log(`mint (CI OIDC token, ES256) at ${CONCURRENCY.join(', ')} clients, ${STEP_SECONDS} s each`);
    const tokens = Array.from({ length: IDENTITY_POOL }, () => issuer.token());
    let n = 0;
    const ciHeaders = () => ({ authorization: `Bearer ${tokens[n++ % tokens.length]}` });
    // The grant id of every token handed out, to check afterwards that each has its committed row.
    const handedOut: string[] = [];
    const collect = (status: number, body: string) => {
      if (status === 201) handedOut.push((JSON.parse(body) as { grant_id: string }).grant_id);
    };
    const mintStep = (connections: number, extra: { overallRate?: number; amount?: number; headers?: () => Record<string, string> } = {}) =>
      cannon({ url: broker.url, connections, durationSeconds: STEP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: extra.headers ?? ciHeaders, onResponse: collect, ...extra });
    // Warm-up (pool, JWKS, and the JIT: after 4 s of load V8 still spent 0.9 s optimising in an 8 s step,
    // a fifth of the broker's CPU; after 40 s, 0.07 s). The mint steps measure the steady state.
    log(`warming the broker up for ${WARMUP_SECONDS} s at 32 clients`);
    await cannon({ url: broker.url, connections: 32, durationSeconds: WARMUP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders });
    // An arrival keeps its key among the re-evaluation sweep's candidates for ARRIVAL_LOOKBACK_MS, and
    // every grant the warm-up minted watches the seeded signal's key: until then each 5 s run tests them
    // all, as it did during the first mint steps before. The steps measure minting; the sweep has its own rows.
    const sweepsQuietAt = signalSeededAt + ARRIVAL_LOOKBACK_MS + SWEEP_INTERVAL_MS;
    if (Date.now() < sweepsQuietAt) {
      log(`waiting ${fmt((sweepsQuietAt - Date.now()) / 1000)} s for the seeded signal to leave the sweep's lookback`);
      await sleep(sweepsQuietAt - Date.now());
    }
    const mint: Array<StepResult & { clients: number; cpuMicrosPerRequest: number; cores: CoreShare; policy: InBrokerPolicy }> = [];
    for (const c of CONCURRENCY) {
      const cpu = broker.cpuSeconds();
      const policyBefore = await brokerPolicyTime(broker.url);
      const split = coreSplit(broker, pg);
      const r = await mintStep(c);
      const cores = split();
      const cpuSeconds = broker.cpuSeconds() - cpu;
      const policyAfter = await brokerPolicyTime(broker.url);
      const evaluations = policyAfter.count - policyBefore.count;
      const policy = {
        evaluations,
        microsPerCall: ((policyAfter.seconds - policyBefore.seconds) / Math.max(1, evaluations)) * 1e6,
        shareOfCpu: (policyAfter.seconds - policyBefore.seconds) / cpuSeconds,
        cedarCalls: policyAfter.cedarCalls - policyBefore.cedarCalls,
        memoAnswers: policyAfter.memoAnswers - policyBefore.memoAnswers,
      };
      const cpuMicrosPerRequest = (cpuSeconds / r.total) * 1e6;
      mint.push({ ...r, clients: c, cpuMicrosPerRequest, cores, policy });
      rows.push({ scenario: 'mint', clients: c, ...r, ratio: r.rps / limit, vs: limitName, limits: limits(r.rps), note: `${fmt(cpuMicrosPerRequest)} µs CPU/req, policy ${fmt(policy.microsPerCall)} µs of it${r.ok === r.total ? '' : `; ${r.total - r.ok} not 201: ${JSON.stringify(r.statuses)}`}` });
    }
    const maxRps = Math.max(...mint.map((m) => m.rps));
    // Evenly spaced arrivals (open loop): autocannon's rate option sends each second's quota in a burst.
    // The target is set at 70 % of the max rate; lighter loads beside it show where latency turns.
    // The 128-client step overloads the broker on purpose, so each step starts once the broker's
    // sealer has chained what the step before staged and the machine is quiet.
    const openLoop = [];
    for (const share of OPEN_LOOP_SHARES) {
      const backlog = await settle(db);
      log(`settled before the ${share * 100}% step: ${backlog.pending} staged audit events left after ${fmt(backlog.waitedMs)} ms`);
      const rate = Math.max(1, Math.round(share * maxRps));
      const cpu = broker.cpuSeconds();
      const pgCpu = pg.cpuSeconds();
      const generatorCpu = process.cpuUsage();
      const metricsBefore = await scrape(broker.url);
      const r = await paced({ url: broker.url, rate, durationSeconds: STEP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders, onResponse: collect });
      const perRequest = (seconds: number) => (seconds / Math.max(1, r.total)) * 1e6;
      const cpuMicrosPerRequest = perRequest(broker.cpuSeconds() - cpu);
      const pgMicrosPerRequest = perRequest(pg.cpuSeconds() - pgCpu);
      const { user, system } = process.cpuUsage(generatorCpu);
      const generatorMicrosPerRequest = perRequest((user + system) / 1e6);
      // What the machine spent a mint at this rate, and so how many of its cores the step needed: spread
      // arrivals share fewer statements and wake every process once a request, so this exceeds the
      // closed-loop steps' cost per mint, and 70 % of their best rate can ask for more than 2 cores.
      const coresNeeded = ((cpuMicrosPerRequest + pgMicrosPerRequest + generatorMicrosPerRequest) * r.rps) / 1e6;
      // The broker's own view meanwhile: its time per mint, and how often a request arriving would have
      // waited for its event loop. What the client saw beyond these was spent outside the broker.
      const metricsAfter = await scrape(broker.url);
      const loop = loopBetween(metricsBefore, metricsAfter);
      const inBroker = mintLatencyBetween(metricsBefore, metricsAfter);
      openLoop.push({ share, rate, ...r, cpuMicrosPerRequest, pgMicrosPerRequest, generatorMicrosPerRequest, coresNeeded, loop, inBroker });
      const loopNote = `in the broker p50 ≤${fmt(inBroker.p50AtMostMs)} ms, p99 ≤${fmt(inBroker.p99AtMostMs)} ms, ${fmt(inBroker.over25ms * 100, 2)}% over 25 ms; event loop late >10 ms in ${fmt(loop.over10ms * 100, 2)}% of ${loop.samples} samples, >25 ms in ${fmt(loop.over25ms * 100, 2)}%, worst ≤${fmt(loop.worstMs)} ms; GC ${loop.gcPauses} pauses, ${fmt(loop.gcMs)} ms`;
      rows.push({ scenario: `mint at ${share * 100}% of max rate`, clients: 'open', ...r, ratio: r.rps / maxRps, vs: 'max mint rate', limits: limits(r.rps), note: `${rate}/s evenly spaced; latency from each planned send; CPU/req: broker ${fmt(cpuMicrosPerRequest)} µs, Postgres ${fmt(pgMicrosPerRequest)} µs, load generator ${fmt(generatorMicrosPerRequest)} µs = ${fmt(coresNeeded, 2)} of 2 cores; ${loopNote}` });
    }
    const at70 = openLoop.find((o) => o.share === 0.7)!;
    // The floor under that step's tail: the mint's write alone at the same rate, evenly spaced. Each
    // commit waits for its WAL flush, and the flush's tail on this disk is the commit's.
    await settle(db);
    const commitAt70 = await pacedInsert(db, at70.rate, STEP_SECONDS * 1000);
    await sealAll(db);
    rows.push({ scenario: 'raw mint INSERT at the 70% step rate', clients: 'open', ...commitAt70, ratio: commitAt70.p99 / at70.p99, vs: 'mint p99 at 70%', note: `${at70.rate}/s evenly spaced, as the 70% step; the durable commit alone (p99 ratio: this ÷ the mint's)` });

    const m32 = mint.find((m) => m.clients === 32)!;
    const assertionCount = Math.ceil(m32.rps * STEP_SECONDS);
    const assertions = Array.from({ length: assertionCount }, () => agent.assertion(broker.url));
    let a = 0;
    const cpuA = broker.cpuSeconds();
    const viaAssertion = await mintStep(32, { amount: assertionCount, headers: () => ({ authorization: `Bearer ${assertions[a++]}` }) });
    const assertionCpu = ((broker.cpuSeconds() - cpuA) / viaAssertion.total) * 1e6;
    rows.push({ scenario: 'mint, RFC 7523 assertion', clients: 32, ...viaAssertion, ratio: viaAssertion.rps / limit, vs: limitName, limits: limits(viaAssertion.rps), note: `${fmt(assertionCpu)} µs CPU/req; + jti INSERT` });

    // The machine's speed drifts by a quarter over minutes (the same mint cost 1,255-2,129 µs of CPU in
    // steps of one run), so a limit measured once, minutes before the mint step, moves the ratio as much
    // as any change to the broker. Measured in rounds instead: the raw INSERT and the 32-client mint
    // back to back, three times; the target takes the median of the rounds' ratios.
    const ratioRounds: Array<{ insert: number; mint: number; ratio: number }> = [];
    for (let round = 0; round < RATIO_ROUNDS; round++) {
      const ins = await rawInsert(db, RATIO_STEP_SECONDS * 1000, 32, true);
      await sealAll(db); // the broker's sealer must not carry the raw step's events into the mint step
      const m = await cannon({ url: broker.url, connections: 32, durationSeconds: RATIO_STEP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders, onResponse: collect });
      const roundLimit = Math.min(nodePair.rps, ins.rps);
      ratioRounds.push({ insert: ins.rps, mint: m.rps, ratio: m.rps / roundLimit });
    }
    const ratioMedian = median(ratioRounds.map((r) => r.ratio));
    rows.push({ scenario: 'mint ÷ raw INSERT, interleaved', clients: 32, rps: median(ratioRounds.map((r) => r.mint)), ratio: ratioMedian, vs: 'same round\'s limit', note: `median of ${RATIO_ROUNDS} rounds (${RATIO_STEP_SECONDS} s INSERT, then ${RATIO_STEP_SECONDS} s mint): ${ratioRounds.map((r) => `${fmt(r.mint)}/${fmt(r.insert)} = ${fmt(r.ratio, 2)}`).join(', ')}` });

    // Scale-out on the same machine: Postgres and the load generator leave part of the second core idle,
    // and one broker's request thread is not saturated either. Two replicas on one Postgres, 16 clients each
    // (no load balancer: each cannon drives its own replica), as a deployment would run them.
    // One issuer for both, as replicas behind one load balancer have: the status list row is shared,
    // and its token names the issuer of whichever replica published it last.
    // After the ratio rounds, as before the 70% step: the broker's sealer would otherwise chain the last
    // round's events during this step, and the replicas would pay for it.
    const replicaBacklog = await settle(db);
    log(`settled before the replicas step: ${replicaBacklog.pending} staged audit events left after ${fmt(replicaBacklog.waitedMs)} ms`);
    const second = await spawnBroker({ ...pg.broker, configDir, kek, env: { TESSERA_ISSUER: broker.url } });
    children.push(second);
    await cannon({ url: second.url, connections: 16, durationSeconds: WARMUP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders }); // warm-up, as the first had
    const cpu2 = [broker.cpuSeconds(), second.cpuSeconds()];
    const replicaSplit = coreSplit(broker, pg);
    const secondSplit = coreSplit(second, pg);
    const pair = await Promise.all([broker, second].map((b) => cannon({ url: b.url, connections: 16, durationSeconds: STEP_SECONDS, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders, onResponse: collect })));
    const replicaCores = replicaSplit();
    const secondCores = secondSplit();
    const secondCpu = second.cpuSeconds() - cpu2[1]!;
    await second.stop();
    // Each replica's request thread is its own limit: the busier of the two counts.
    const busier = replicaCores.requestThread >= secondCores.requestThread ? replicaCores : secondCores;
    const replicas = {
      rps: pair[0]!.rps + pair[1]!.rps,
      p50: Math.max(pair[0]!.p50, pair[1]!.p50),
      p99: Math.max(pair[0]!.p99, pair[1]!.p99),
      max: Math.max(pair[0]!.max, pair[1]!.max),
      cpuMicrosPerRequest: ((broker.cpuSeconds() - cpu2[0]! + secondCpu) / (pair[0]!.total + pair[1]!.total)) * 1e6,
      cores: { ...replicaCores, broker: replicaCores.broker + secondCores.broker, requestThread: busier.requestThread, requestThreadWaiting: busier.requestThreadWaiting },
    };
    rows.push({ scenario: 'mint, 2 broker replicas', clients: 32, ...replicas, ratio: replicas.rps / limit, vs: limitName, limits: limits(replicas.rps), note: `16 clients each; ${fmt(pair[0]!.rps)} + ${fmt(pair[1]!.rps)}/s; p50/p99 the worse replica's; ${fmt(replicas.cpuMicrosPerRequest)} µs CPU/req` });
    const withoutRow = await missingRows(db, handedOut);

    // On the grants the load steps left active (they live 10 minutes), as the scheduler meets them.
    log('re-evaluation sweep: every watching grant tested, against the candidates found through indexes');
    const reevaluation = await benchReevaluationSweep(db, { runner_trust: BENCH_SIGNAL_MAX_AGE });
    rows.push(
      { scenario: 're-evaluation sweep, every grant tested', clients: 1, rps: reevaluation.watching / (reevaluation.fullMs / 1000), note: `${fmt(reevaluation.fullMs)} ms for ${reevaluation.watching} active watching grants (a broker's first two runs); median of ${reevaluation.rounds}` },
      { scenario: 're-evaluation sweep, candidates', clients: 1, ratio: reevaluation.candidatesMs / reevaluation.fullMs, vs: 'every grant tested', note: `${fmt(reevaluation.candidatesMs, 2)} ms: arrivals since the last run, then grants by watched key or due_at (every later run, every 5 s)` },
    );

    log('downstream verification through tessera/verify against plain jose');
    const verifyTokens: string[] = [];
    // One retry: after the load steps a pooled keep-alive connection may be one the server just closed.
    const mintOnce = () => fetch(`${broker.url}/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', ...ciHeaders() }, body: MINT_BODY });
    for (let i = 0; i < 200; i++) {
      const res = await mintOnce().catch(() => mintOnce()).catch((err: unknown) => {
        throw new Error(`mint for the verify step failed (broker ${broker.alive() ? 'alive' : 'exited'}): ${String(err)}\n${broker.stderrTail().slice(-3_000)}`, { cause: err });
      });
      verifyTokens.push(((await res.json()) as { access_token: string }).access_token);
    }
    const verify = await benchVerify(broker.url, verifyTokens, 3_000);
    rows.push(
      { scenario: 'raw jose jwtVerify (local JWKS)', clients: 8, ...verify.rawJose },
      { scenario: 'tessera/verify (remote JWKS, cached)', clients: 8, ...verify.tesseraVerify, ratio: verify.ratio, vs: 'raw jose verify', limits: limits(verify.tesseraVerify.rps), note: `${verify.steadyFetches} JWKS fetch(es), ${verify.statusListFetches} status list fetch(es) in ${fmt(verify.tesseraVerify.count)} verifications` },
    );
    await broker.stop();

    log(`CPU profile of the mint path (a second broker process, its request thread sampled after ${WARMUP_SECONDS} s of warm-up)`);
    const profileFile = path.join(profileDir, 'request-thread.cpuprofile');
    const profiled = await spawnBroker({ ...pg.broker, configDir, kek, nodeArgs: ['--import', './scripts/bench/profile-hook.ts'], env: { TESSERA_PROFILE_OUT: profileFile } });
    children.push(profiled);
    const profiledStep = (seconds: number) => cannon({ url: profiled.url, connections: 32, durationSeconds: seconds, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: ciHeaders });
    await profiledStep(WARMUP_SECONDS);
    process.kill(profiled.pid, 'SIGUSR2');
    const profileRun = await profiledStep(5);
    process.kill(profiled.pid, 'SIGUSR2');
    for (let waited = 0; waited < PROFILE_WRITE_MS && !existsSync(profileFile); waited += 100) await sleep(100);
    await profiled.stop();
    const profile = existsSync(profileFile) ? await summarizeProfile(profileFile) : undefined;

    // The target's share is the broker's own: the time its evaluations took (as its metric sums them, on
    // the request thread, waits for a core included) against its CPU over the 32-client step. Timed alone
    // in this process, the same evaluation is shown beside it, and the demo's larger set.
    const policyShare = m32.policy.shareOfCpu;
    const isolatedPolicyShare = (mintPolicy.mean * 1000) / m32.cpuMicrosPerRequest;
    const rowsShare = (rowsAlone.mean * 1000) / m32.cpuMicrosPerRequest;
    rows.push(
      { scenario: 'mint rows built alone', clients: 1, ...rowsAlone, ratio: rowsShare, vs: 'mint CPU/req @32', note: `mean ${fmt(rowsAlone.mean * 1000)} µs/mint: decision, usage, 2 audit events, their row digests and secret check` },
      { scenario: 'policy evaluate (Cedar) in the broker, mint @32', clients: 32, rps: m32.rps, ratio: policyShare, vs: 'broker CPU @32', note: `${fmt(m32.policy.microsPerCall)} µs/call over ${m32.policy.evaluations} evaluations, from tessera_policy_evaluation_seconds; Cedar called ${m32.policy.cedarCalls} times, the memo answered ${m32.policy.memoAnswers}` },
      { scenario: 'policy evaluate (Cedar), mint policies', clients: 1, ...mintPolicy, ratio: isolatedPolicyShare, vs: 'mint CPU/req @32', note: `timed alone: mean ${fmt(mintPolicy.mean * 1000)} µs/call; ${mintPolicy.policies} policies` },
      { scenario: 'policy evaluate (Cedar), mint policies, no memo', clients: 1, ...mintPolicyCedar, ratio: (mintPolicyCedar.mean * 1000) / m32.cpuMicrosPerRequest, vs: 'mint CPU/req @32', note: `timed alone, every call asking Cedar (a question the memo has not seen): mean ${fmt(mintPolicyCedar.mean * 1000)} µs/call` },
      { scenario: 'policy evaluate (Cedar), demo policies', clients: 1, ...policy, ratio: (policy.mean * 1000) / m32.cpuMicrosPerRequest, vs: 'mint CPU/req @32', note: `mean ${fmt(policy.mean * 1000)} µs/call; ${policy.policies} policies; ${JSON.stringify(policy.outcomes)}` },
    );

    log(`expiry sweep of ${EXPIRY_GRANTS} grants at batch sizes ${EXPIRY_BATCHES.join(', ')}`);
    const expiry = await benchExpirySweep(db, superuser, EXPIRY_GRANTS, EXPIRY_BATCHES);
    for (const e of expiry) {
      rows.push({ scenario: `expiry sweep, batch ${e.batch}`, clients: 1, rps: e.rowsPerSecond, note: `${e.expired} rows in ${fmt(e.seconds)} s, ${e.statements} statements${e.batch === END_BATCH_SIZE ? ' (chosen)' : ''}; then ${fmt(e.sealed)} audit events chained in ${fmt(e.sealSeconds)} s` });
    }

    // What a mint made of its raw parts alone would cost the machine, and the rate that caps: one identity
    // verify and one token signature (the pair), the write with its chaining, one HTTP exchange with the
    // load generator's side of it, one policy evaluation. The mint also reads its signals and history.
    const parts = { crypto: nodePair.machineMicrosPerOp, insert: insert.machineMicrosPerOp, http: helloRun.machineMicrosPerOp, policy: mintPolicy.machineMicrosPerOp };
    const ceiling = composedCeiling(os.cpus().length, parts);
    const mintMachineMicros = (m32.cores.machine / m32.rps) * 1e6;

    const targets = {
      mintThroughput: { ratio: ratioMedian, rounds: ratioRounds.map((r) => r.ratio), singleStep: m32.rps / limit, min: 0.5, goal: 0.7, pass: ratioMedian >= 0.5 },
      p99At70: { p99: at70.p99, max: 25, pass: at70.total > 0 && at70.p99 <= 25, inBrokerP99AtMost: at70.inBroker.p99AtMostMs, commitAloneP99: commitAt70.p99, coresNeeded: at70.coresNeeded },
      noRequestOver100ms: { maxAt70: at70.max, pass: at70.total > 0 && at70.max <= 100 },
      verifyRatio: { ratio: verify.ratio, min: 0.8, pass: verify.ratio >= 0.8 },
      jwksFetches: { steady: verify.steadyFetches, burst: verify.burst.fetches, unknownKidInCooldown: verify.burst.unknownKidFetchesWithinCooldown, pass: verify.steadyFetches <= 1 && verify.burst.fetches === 1 && verify.burst.unknownKidFetchesWithinCooldown === 0 },
      policyShare: { share: policyShare, microsPerCall: m32.policy.microsPerCall, isolatedShare: isolatedPolicyShare, max: 0.1, pass: m32.policy.evaluations > 0 && policyShare <= 0.1 },
      everyTokenHasRow: { tokens: handedOut.length, withoutRow: withoutRow.length, pass: handedOut.length > 0 && withoutRow.length === 0 },
    };

    console.log(`\ntessera bench ${run}  (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, Node ${process.version}, ${STEP_SECONDS} s steps)\n`);
    console.log(table(rows));
    console.log(`\nJWKS: ${verify.steadyFetches} fetch(es) in steady state; rotation burst of ${verify.burst.tokens} tokens with a new kid: ${verify.burst.fetches} fetch(es), ${verify.burst.verified} verified; unknown kid inside cooldown: ${verify.burst.unknownKidFetchesWithinCooldown} fetch(es)`);
    console.log(`Where the ${os.cpus().length} cores went during the mint steps (cores busy on average; waiting = runnable with no core free, from schedstat; steal = taken by the hypervisor):`);
    for (const m of [...mint, { clients: '2x16', cores: replicas.cores }]) {
      const k = m.cores;
      console.log(`  ${String(m.clients).padStart(4)} clients: broker${m.clients === '2x16' ? 's' : ''} ${fmt(k.broker, 2)} (request thread${m.clients === '2x16' ? ', busier replica' : ''} ${fmt(k.requestThread, 2)} running + ${fmt(k.requestThreadWaiting, 2)} waiting for a core), Postgres ${fmt(k.postgres, 2)}, load generator ${fmt(k.loadGenerator, 2)}, other ${fmt(Math.max(0, k.machine - k.broker - k.postgres - k.loadGenerator), 2)}; machine ${fmt(k.machine, 2)} of ${os.cpus().length}, steal ${fmt(k.steal, 2)}`);
    }
    console.log(
      `Composed ceiling: a mint made of its raw parts alone would cost the machine ${fmt(ceiling.microsPerOp)} µs of CPU ` +
        `(${Object.entries(parts).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}), so ${os.cpus().length} cores cap it at ${fmt(ceiling.rps)}/s = ${fmt(ceiling.rps / limit, 2)}x ${limitName}; ` +
        `the mint at 32 clients costs ${fmt(mintMachineMicros)} µs of machine CPU and reaches ${fmt(m32.rps)}/s, ${fmt(m32.rps / ceiling.rps, 2)} of that ceiling`,
    );
    console.log(`Mint CPU per request @32 clients: ${fmt(m32.cpuMicrosPerRequest)} µs (OIDC) / ${fmt(assertionCpu)} µs (client assertion); policy evaluation in the broker ${fmt(m32.policy.microsPerCall)} µs a call = ${fmt(policyShare * 100, 2)}% of its CPU; timed alone ${fmt(mintPolicy.mean * 1000)} µs = ${fmt(isolatedPolicyShare * 100, 2)}%, ${fmt(mintPolicyCedar.mean * 1000)} µs without the memo (demo policies: ${fmt(policy.mean * 1000)} µs)`);
    if (profile) {
      console.log(`\nCPU profile (${fmt(profileRun.rps)} req/s, ${fmt(profile.busyMs)} ms busy main thread over the 5 s run): self time by area`);
      for (const x of profile.byArea.slice(0, 14)) console.log(`  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.area}`);
      console.log('Top functions (self time):');
      for (const x of profile.topFunctions.slice(0, 12)) console.log(`  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.fn}`);
      console.log(`Inclusive (synchronous stacks): ${Object.entries(profile.inclusive).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ')}`);
    }
    console.log('\nTargets:');
    for (const [name, t] of Object.entries(targets)) console.log(`  ${t.pass ? 'PASS' : 'MISS'}  ${name}  ${JSON.stringify(t, (k, v) => (k === 'pass' ? undefined : typeof v === 'number' ? Number(fmt(v)) : v))}`);

    const result = {
      run,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      stepSeconds: STEP_SECONDS,
      raw: { nodeCryptoPair: nodePair, josePair: jose, insert, insertAlone, hello: helloRun, idleWake: wake, limit: { rps: limit, name: limitName } },
      mint,
      mintAt70: at70,
      commitAt70,
      mintOpenLoop: openLoop,
      mintAssertion: { ...viaAssertion, cpuMicrosPerRequest: assertionCpu },
      mintReplicas: { ...replicas, perReplica: pair },
      mintRatioRounds: { median: ratioMedian, rounds: ratioRounds },
      composedCeiling: { parts, ...ceiling, ratioToLimit: ceiling.rps / limit, mintMachineMicros, mintShareOfCeiling: m32.rps / ceiling.rps },
      verify,
      policy: { demo: policy, mint: { ...mintPolicy, shareOfMintCpu: isolatedPolicyShare }, mintWithoutMemo: mintPolicyCedar, inBroker: { ...m32.policy, shareOfMintCpu: policyShare } },
      mintRows: { ...rowsAlone, shareOfMintCpu: rowsShare },
      expiry,
      reevaluation,
      profile: profile && { file: path.relative(REPO_ROOT, profileFile), requestsPerSecond: profileRun.rps, ...profile },
      targets,
      rows,
    };
    const jsonFile = path.join(outDir, `${run}.json`);
    const svgFile = path.join(outDir, `${run}-mint.svg`);
    await writeFile(jsonFile, JSON.stringify(result, null, 2));
    await writeFile(svgFile, chartSvg(`tessera mint ${run}`, mint.map((m) => ({ clients: m.clients, rps: m.rps, p50: m.p50, p99: m.p99 })), [
      { label: `0.5x limit ${Math.round(0.5 * limit)}/s`, rps: 0.5 * limit },
    ]));
    console.log(`\nResults: ${path.relative(REPO_ROOT, jsonFile)}, chart ${path.relative(REPO_ROOT, svgFile)}, profile ${profile?.busyMs ? path.relative(REPO_ROOT, profileDir) : '(none)'}`);
  } finally {
    for (const c of children) await c.stop().catch(() => {});
    await db.destroy().catch(() => {});
    await superuser.destroy().catch(() => {});
    await issuer.close().catch(() => {});
    await pg.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${describeError(err)}`);
    process.exit(1);
  },
);
