import { spawnBroker } from '../lib/broker-process.js';
import { sleep, summarize } from '../lib/stats.js';
import { byStatus, closedLoop, mint, missingRows, tokensOf } from './load.js';
import { verdict, type Drill } from './drill.js';

const CLIENTS = 16;
/** DESIGN.md: with Postgres down the broker answers 503, and fast. */
const FAIL_FAST_MS = 2_000;
const OUTAGE_MS = 5_000;
const RECOVERY_LIMIT_MS = 20_000;

/** Postgres stopped under load: 503 within 2 s, no token without its row, recovery without a broker restart. */
export const postgresStopped: Drill = async (ctx) => {
  const broker = await spawnBroker({ ...ctx.pg.broker, configDir: ctx.configDir, kek: ctx.kek });
  try {
    const auth = `Bearer ${ctx.issuer.token()}`;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const marks = { stopCalled: 0, stopped: 0, restartCalled: 0, restarted: 0, firstOkAfterRestart: NaN, end: Infinity };
    const load = closedLoop(CLIENTS, async () => {
      const o = await mint(broker.url, auth, t0);
      if (o.status === 201 && marks.restarted && o.at >= marks.restarted && Number.isNaN(marks.firstOkAfterRestart)) {
        marks.firstOkAfterRestart = o.at + o.ms;
        marks.end = now() + 1_000;
      }
      return o;
    }, () => now() > marks.end);

    await sleep(2_000);
    ctx.log('stopping Postgres under load');
    marks.stopCalled = now();
    await ctx.pg.stop();
    marks.stopped = now();
    await sleep(OUTAGE_MS);
    ctx.log('starting Postgres again');
    marks.restartCalled = now();
    await ctx.pg.restart();
    marks.restarted = now();
    const giveUp = setTimeout(() => (marks.end = 0), RECOVERY_LIMIT_MS);
    const outcomes = await load;
    clearTimeout(giveUp);

    // The outage: requests sent after Postgres was down and answered before it was being started again
    // (it accepts connections before restart() resolves, and those requests rightly get tokens).
    const during = outcomes.filter((o) => o.at >= marks.stopped && o.at + o.ms < marks.restartCalled);
    const first503 = outcomes.filter((o) => o.status === 503 && o.at >= marks.stopCalled).map((o) => o.at + o.ms).sort((a, b) => a - b)[0] ?? NaN;
    const duringLatency = summarize(during.map((o) => o.ms));
    const missing = await missingRows(ctx.db, tokensOf(outcomes));
    const recoveryMs = marks.firstOkAfterRestart - marks.restarted;
    return verdict('postgres stopped mid-load', {
      'every request during the outage answered 503 within 2 s': during.length > 0 && during.every((o) => o.status === 503) && duringLatency.max <= FAIL_FAST_MS,
      'no token without a committed row': missing.length === 0,
      'recovered without a broker restart': broker.alive() && Number.isFinite(recoveryMs),
    }, {
      requests: outcomes.length,
      statuses: byStatus(outcomes),
      outageRequests: during.length,
      outageStatuses: byStatus(during),
      outageLatencyMs: duringLatency,
      firstErrorAfterStopMs: first503 - marks.stopCalled,
      postgresStopTookMs: marks.stopped - marks.stopCalled,
      tokens: tokensOf(outcomes).length,
      tokensWithoutRow: missing.length,
      recoveryAfterRestartMs: recoveryMs,
      brokerPidUnchanged: broker.alive(),
      ...(broker.alive() ? {} : { brokerExit: { code: broker.child.exitCode, signal: broker.child.signalCode, lastOutput: broker.stderrTail().split('\n').filter((l) => /^\w*error|Emitted|^\s+at Client|code:/.test(l)).slice(-6) } }),
    });
  } finally {
    await broker.stop();
  }
};
