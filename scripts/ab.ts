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
import { benchAgent, startBenchIssuer, writeBenchConfig, MINT_BODY } from './lib/identities.js';
import { describeError } from './lib/describe-error.js';
import { fmt, median, sleep } from './lib/stats.js';
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

const IDENTITY_POOL = 256;
const SETTLE_MAX_MS = 30_000;
const log = (msg: string) => process.stderr.write(`[ab ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Side {
  name: string;
  pg: ScratchPostgres;
  db: Database;
  broker: BrokerProcess;
}

/** Waits until the side's sealer has chained what the last step staged, so it does not run into the other side's step. */
async function settle(side: Side): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < SETTLE_MAX_MS) {
    const row = await side.db.selectFrom('audit_pending').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    if (Number(row.n) === 0) return;
    await sleep(250);
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

  const worktree = await mkdtemp(path.join(os.tmpdir(), 'tessera-ab-base-'));
  const sides: Side[] = [];
  const issuer = await startBenchIssuer();
  try {
    log(`checking out ${values.base} (${commit.slice(0, 12)}) in ${worktree}`);
    execFileSync('git', ['worktree', 'add', '--detach', '--force', worktree, commit], { cwd: REPO_ROOT, stdio: 'ignore' });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(worktree, 'node_modules'));
    const agent = benchAgent();
    const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
    for (const [name, root, nodeArgs] of [[`base ${values.base}`, worktree, []], ['this checkout', REPO_ROOT, nodeFlags]] as const) {
      log(`starting Postgres and a broker for ${name}${nodeArgs.length ? ` (${nodeArgs.join(' ')})` : ''}`);
      const pg = await startScratchPostgres('ab');
      const configDir = await writeBenchConfig(path.join(pg.dir, 'config'), issuer, agent);
      const broker = await spawnBroker({ ...pg.broker, configDir, kek: randomBytes(32).toString('base64url'), root, nodeArgs: [...nodeArgs] });
      sides.push({ name, pg, db: createDatabase({ url: pg.url }).db, broker });
    }
    const tokens = Array.from({ length: IDENTITY_POOL }, () => issuer.token());
    let n = 0;
    const headersFor = (side: Side) =>
      values.identity === 'assertion' ? () => ({ authorization: `Bearer ${agent.assertion(side.broker.url)}` }) : () => ({ authorization: `Bearer ${tokens[n++ % tokens.length]}` });
    const step = async (side: Side, durationSeconds: number) => {
      await settle(side);
      const cpu = side.broker.cpuSeconds();
      const r = await cannon({ url: side.broker.url, connections: clients, durationSeconds, method: 'POST', path: '/v1/grants', body: MINT_BODY, headers: headersFor(side) });
      if (r.non2xx || r.errors) throw new Error(`${side.name}: ${r.non2xx} non-2xx answers, ${r.errors} errors (${JSON.stringify(r.statuses)})`);
      return { rps: r.rps, p99: r.p99, cpuMicros: ((side.broker.cpuSeconds() - cpu) * 1e6) / r.total };
    };
    log('warming both (JIT, pools, JWKS)');
    for (const side of sides) await step(side, 3);

    const results: Array<{ base: Awaited<ReturnType<typeof step>>; head: Awaited<ReturnType<typeof step>>; ratio: number }> = [];
    process.stdout.write(`${clients} clients, ${seconds} s steps, ${values.identity} identities; ratio = this checkout ÷ base\n`);
    process.stdout.write('round  base mints/s  µs/mint  p99 ms   this mints/s  µs/mint  p99 ms   ratio\n');
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? [0, 1] : [1, 0];
      const got: Array<Awaited<ReturnType<typeof step>>> = [];
      for (const i of order) got[i] = await step(sides[i]!, seconds);
      const [base, head] = got as [Awaited<ReturnType<typeof step>>, Awaited<ReturnType<typeof step>>];
      results.push({ base, head, ratio: head.rps / base.rps });
      const cols = (s: typeof base) => `${fmt(s.rps).padStart(12)}  ${fmt(s.cpuMicros).padStart(7)}  ${fmt(s.p99).padStart(6)}`;
      process.stdout.write(`${String(round).padStart(5)}  ${cols(base)}   ${cols(head)}   ${fmt(head.rps / base.rps).padStart(5)}\n`);
    }
    const summary = {
      base: { ref: values.base, commit },
      nodeFlags,
      identity: values.identity,
      clients,
      seconds,
      medianRatio: median(results.map((r) => r.ratio)),
      ratioRange: [Math.min(...results.map((r) => r.ratio)), Math.max(...results.map((r) => r.ratio))],
      medianCpuMicros: { base: median(results.map((r) => r.base.cpuMicros)), head: median(results.map((r) => r.head.cpuMicros)) },
      rounds: results,
    };
    process.stdout.write(
      `median ratio ${fmt(summary.medianRatio)} (rounds ${fmt(summary.ratioRange[0])}–${fmt(summary.ratioRange[1])}); ` +
        `CPU per mint ${fmt(summary.medianCpuMicros.base)} → ${fmt(summary.medianCpuMicros.head)} µs (medians)\n`,
    );
    const outDir = path.join(REPO_ROOT, 'bench-results');
    await mkdir(outDir, { recursive: true });
    const file = path.join(outDir, `ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
    log(`wrote ${path.relative(REPO_ROOT, file)}`);
  } finally {
    for (const side of sides) {
      await side.broker.stop();
      await side.db.destroy();
      await side.pg.destroy();
    }
    await issuer.close();
    await rm(worktree, { recursive: true, force: true });
    execFileSync('git', ['worktree', 'prune'], { cwd: REPO_ROOT, stdio: 'ignore' });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:ab failed: ${describeError(err)}\n`);
    process.exit(1);
  },
);
