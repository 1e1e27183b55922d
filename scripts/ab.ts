// npm run bench:ab: this checkout's mint path against another build's, in paired rounds on one machine.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase, type Database } from '../src/db/database.js';
import { REPO_ROOT, spawnBroker, type BrokerProcess } from './lib/broker-process.js';
import { startScratchPostgres, type ScratchPostgres } from './lib/postgres.js';
import { benchAgent, seedBenchSignal, startBenchIssuer, writeBenchConfig, IDENTITY_POOL, MINT_BODY } from './lib/identities.js';
import { untilSealed } from './lib/seal.js';
import { describeError } from './lib/describe-error.js';
import { fmt, median } from './lib/stats.js';
import { cannon } from './bench/cannon.js';

const USAGE = `Usage: npm run bench:ab -- [--base <git ref>] [--rounds <n>] [--clients <n>] [--seconds <n>] [--identity oidc|assertion] [--node-flags='<flags>']

Compares this checkout (uncommitted changes included) with another build, on one machine at once:
each side is a broker process on its own scratch Postgres, and the two take turns at the same load
(POST /v1/grants from --clients connections for --seconds), the order swapped every round. On a
shared VM whose speed drifts by a quarter within minutes, only the ratio within a round means
something; the median of the rounds' ratios is the result.

  --base     the build to compare with (default HEAD): checked out in a temporary git worktree,
             run with this checkout's node_modules (so compare builds with the same dependencies)
  --rounds   rounds (default 6)
  --clients  concurrent clients (default 32)
  --seconds  seconds per step (default 4)
  --identity how the clients prove who they are: oidc (CI tokens from a pool of 256, reused as a CI
             job reuses its token; the default) or assertion (an RFC 7523 assertion per request)
  --node-flags  extra node flags for this checkout's broker only (e.g. --node-flags=--max-semi-space-size=32),
             to measure a runtime setting against the same build without it (--base HEAD)
  --help     this text

Prints each round and the medians; writes bench-results/ab-<time>.json.`;

const SETTLE_MAX_MS = 30_000;
const log = (msg: string) => process.stderr.write(`[ab ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Side {
  name: string;
  pg: ScratchPostgres;
  db: Database;
  broker: BrokerProcess;
}

interface StepFigures {
  rps: number;
  p99: number;
  /** CPU per mint of the broker process (every thread), its backlog sealed included. */
  cpuMicros: number;
  /** CPU per mint of the broker's request thread alone, during the load. */
  threadMicros: number;
  /** Time per mint the request thread was runnable but had no core, during the load. */
  threadWaitMicros: number;
  /** CPU per mint of its Postgres (every backend), likewise. */
  pgCpuMicros: number;
}

/** Waits until the side's sealer has chained what its last step staged (false if it has not within SETTLE_MAX_MS). */
const settle = async (side: Side): Promise<boolean> => (await untilSealed(side.db, SETTLE_MAX_MS)) === 0;

/** Undo steps, run last first whatever fails; also on SIGINT and SIGTERM, so no worktree, cluster or broker is left. */
class Cleanup {
  readonly #steps: Array<{ what: string; run: () => unknown }> = [];
  #ran = false;

  add(what: string, run: () => unknown): void {
    this.#steps.push({ what, run });
  }

  async run(): Promise<void> {
    if (this.#ran) return;
    this.#ran = true;
    for (const { what, run } of this.#steps.reverse()) {
      try {
        await run();
      } catch (err) {
        log(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { base: { type: 'string', default: 'HEAD' }, rounds: { type: 'string', default: '6' }, clients: { type: 'string', default: '32' }, seconds: { type: 'string', default: '4' }, 'node-flags': { type: 'string', default: '' }, identity: { type: 'string', default: 'oidc' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const rounds = Number(values.rounds);
  const clients = Number(values.clients);
  const seconds = Number(values.seconds);
  for (const [name, v] of Object.entries({ rounds, clients, seconds })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, not ${String(values[name as keyof typeof values])}`);
  }
  if (values.identity !== 'oidc' && values.identity !== 'assertion') throw new Error(`--identity must be oidc or assertion, not ${values.identity}`);
  const commit = execFileSync('git', ['rev-parse', '--verify', `${values.base}^{commit}`], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();

  const cleanup = new Cleanup();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup.run().finally(() => process.exit(130));
    });
  }
  try {
    const issuer = await startBenchIssuer();
    cleanup.add('stop the CI issuer', () => issuer.close());
    const worktree = await mkdtemp(path.join(os.tmpdir(), 'tessera-ab-base-'));
    cleanup.add(`remove the worktree ${worktree}`, async () => {
      await rm(worktree, { recursive: true, force: true });
      execFileSync('git', ['worktree', 'prune'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    });
    log(`checking out ${values.base} (${commit.slice(0, 12)}) in ${worktree}`);
    execFileSync('git', ['worktree', 'add', '--detach', '--force', worktree, commit], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(worktree, 'node_modules'));
    const agent = benchAgent();
    const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
    const sides: Side[] = [];
    for (const [name, root, nodeArgs] of [[`base ${values.base}`, worktree, []], ['this checkout', REPO_ROOT, nodeFlags]] as const) {
      log(`starting Postgres and a broker for ${name}${nodeArgs.length ? ` (${nodeArgs.join(' ')})` : ''}`);
      const pg = await startScratchPostgres('ab');
      cleanup.add(`destroy ${name}'s Postgres`, () => pg.destroy());
      const { db } = createDatabase({ url: pg.url });
      cleanup.add(`close ${name}'s connections`, () => db.destroy());
      const configDir = await writeBenchConfig(path.join(pg.dir, 'config'), issuer, agent);
      const broker = await spawnBroker({ ...pg.broker, configDir, kek: randomBytes(32).toString('base64url'), root, nodeArgs: [...nodeArgs] });
      cleanup.add(`stop ${name}'s broker`, () => broker.stop());
      await seedBenchSignal(broker.url);
      sides.push({ name, pg, db, broker });
    }
    let tokens: string[] = [];
    let n = 0;
    const headersFor = (side: Side) =>
      values.identity === 'assertion' ? () => ({ authorization: `Bearer ${agent.assertion(side.broker.url)}` }) : () => ({ authorization: `Bearer ${tokens[n++ % tokens.length]}` });
    /** One step: the load, then the wait for its own audit backlog, so each side's CPU includes the sealing it caused and the next step starts on a drained outbox. */
    const step = async (side: Side, durationSeconds: number): Promise<StepFigures> => {
      if (!side.broker.alive()) throw new Error(`${side.name}'s broker exited:\n${side.broker.stderrTail()}`);
      const cpu = side.broker.cpuSeconds();
      const thread = side.broker.requestThreadCpuSeconds();
      const waited = side.broker.requestThreadWaitSeconds();
      const pgCpu = side.pg.cpuSeconds();
      const r = await cannon({ url: side.broker.url, connections: clients, durationSeconds, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: headersFor(side) });
      if (!side.broker.alive()) throw new Error(`${side.name}'s broker exited during the load:\n${side.broker.stderrTail()}`);
      const threadMicros = ((side.broker.requestThreadCpuSeconds() - thread) * 1e6) / r.total;
      const threadWaitMicros = ((side.broker.requestThreadWaitSeconds() - waited) * 1e6) / r.total;
      if (r.non2xx || r.errors) throw new Error(`${side.name}: ${r.non2xx} non-2xx answers, ${r.errors} errors (${JSON.stringify(r.statuses)})`);
      if (!(await settle(side))) log(`${side.name}: audit backlog not sealed within ${SETTLE_MAX_MS / 1000} s; its CPU figures leave the rest out`);
      return { rps: r.rps, p99: r.p99, cpuMicros: ((side.broker.cpuSeconds() - cpu) * 1e6) / r.total, threadMicros, threadWaitMicros, pgCpuMicros: ((side.pg.cpuSeconds() - pgCpu) * 1e6) / r.total };
    };
    // Identity tokens are minted afresh each round, well inside their lifetime and the issuer's maximum age.
    const freshTokens = () => {
      tokens = Array.from({ length: IDENTITY_POOL }, () => issuer.token());
    };
    log('warming both (JIT, pools, JWKS)');
    freshTokens();
    for (const side of sides) await step(side, 3);

    const results: Array<{ base: StepFigures; head: StepFigures; ratio: number }> = [];
    process.stdout.write(`${clients} clients, ${seconds} s steps, ${values.identity} identities; ratio = this checkout ÷ base; µs = CPU per mint, sealing included (thread: the request thread's, during the load)\n`);
    process.stdout.write('round  base mints/s  broker µs  thread µs  pg µs  p99 ms   this mints/s  broker µs  thread µs  pg µs  p99 ms   ratio\n');
    for (let round = 1; round <= rounds; round++) {
      freshTokens();
      const order = round % 2 ? [0, 1] : [1, 0];
      const got: StepFigures[] = [];
      for (const i of order) got[i] = await step(sides[i]!, seconds);
      const [base, head] = got as [StepFigures, StepFigures];
      results.push({ base, head, ratio: head.rps / base.rps });
      const cols = (s: StepFigures) => `${fmt(s.rps).padStart(12)}  ${fmt(s.cpuMicros).padStart(9)}  ${fmt(s.threadMicros).padStart(9)}  ${fmt(s.pgCpuMicros).padStart(5)}  ${fmt(s.p99).padStart(6)}`;
      process.stdout.write(`${String(round).padStart(5)}  ${cols(base)}   ${cols(head)}   ${fmt(head.rps / base.rps).padStart(5)}\n`);
    }
    const med = (f: (s: StepFigures) => number) => ({ base: median(results.map((r) => f(r.base))), head: median(results.map((r) => f(r.head))) });
    const summary = {
      base: { ref: values.base, commit },
      nodeFlags,
      identity: values.identity,
      clients,
      seconds,
      medianRatio: median(results.map((r) => r.ratio)),
      ratioRange: [Math.min(...results.map((r) => r.ratio)), Math.max(...results.map((r) => r.ratio))],
      medianCpuMicros: med((s) => s.cpuMicros),
      medianRequestThreadCpuMicros: med((s) => s.threadMicros),
      medianRequestThreadWaitMicros: med((s) => s.threadWaitMicros),
      medianPostgresCpuMicros: med((s) => s.pgCpuMicros),
      rounds: results,
    };
    process.stdout.write(
      `median ratio ${fmt(summary.medianRatio)} (rounds ${fmt(summary.ratioRange[0])}–${fmt(summary.ratioRange[1])}); ` +
        `CPU per mint (medians): broker ${fmt(summary.medianCpuMicros.base)} → ${fmt(summary.medianCpuMicros.head)} µs ` +
        `(request thread ${fmt(summary.medianRequestThreadCpuMicros.base)} → ${fmt(summary.medianRequestThreadCpuMicros.head)} µs, ` +
        `waiting for a core ${fmt(summary.medianRequestThreadWaitMicros.base)} → ${fmt(summary.medianRequestThreadWaitMicros.head)} µs), ` +
        `Postgres ${fmt(summary.medianPostgresCpuMicros.base)} → ${fmt(summary.medianPostgresCpuMicros.head)} µs\n`,
    );
    const outDir = path.join(REPO_ROOT, 'bench-results');
    await mkdir(outDir, { recursive: true });
    const file = path.join(outDir, `ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
    log(`wrote ${path.relative(REPO_ROOT, file)}`);
  } finally {
    await cleanup.run();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:ab failed: ${describeError(err)}\n`);
    process.exit(1);
  },
);
