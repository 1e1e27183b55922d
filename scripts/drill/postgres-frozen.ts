import { spawnBroker } from '../lib/broker-process.js';
import { sleep, summarize } from '../lib/stats.js';
import { byStatus, closedLoop, mint, missingRows, tokensOf } from './load.js';
import { verdict, type Drill } from './drill.js';

const CLIENTS = 16;
const FREEZE_MS = 30_000;
/**
 * The longest a request may legitimately take with Postgres frozen: a pool wait (connectionTimeoutMillis,
 * 2 s) then one query up to the client-side query_timeout (6 s), plus a second of scheduling slack.
 * src/db/database.ts owns those figures; anything past this is a hang.
 */
const HANG_LIMIT_MS = 2_000 + 6_000 + 1_000;
const RECOVERY_LIMIT_MS = 20_000;

/** Postgres frozen (SIGSTOP) for 30 s under load: no request hangs past the broker's own timeouts. */
export const postgresFrozen: Drill = async (ctx) => {
  const broker = await spawnBroker({ ...ctx.pg.broker, configDir: ctx.configDir, kek: ctx.kek });
  let frozen: number[] = [];
  try {
    const auth = `Bearer ${ctx.issuer.token()}`;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const marks = { frozen: 0, thawed: 0, firstOkAfterThaw: NaN, end: Infinity };
    const load = closedLoop(CLIENTS, async () => {
      const o = await mint(broker.url, auth, t0);
      if (o.status === 201 && marks.thawed && o.at >= marks.thawed && Number.isNaN(marks.firstOkAfterThaw)) {
        marks.firstOkAfterThaw = o.at + o.ms;
        marks.end = now() + 1_000;
      }
      return o;
    }, () => now() > marks.end);

    await sleep(2_000);
    frozen = ctx.pg.freeze();
    marks.frozen = now();
    ctx.log(`froze Postgres (${frozen.length} processes) for ${FREEZE_MS / 1000} s`);
    await sleep(FREEZE_MS);
    ctx.pg.thaw(frozen);
    frozen = [];
    marks.thawed = now();
    ctx.log('thawed Postgres');
    const giveUp = setTimeout(() => (marks.end = 0), RECOVERY_LIMIT_MS);
    const outcomes = await load;
    clearTimeout(giveUp);

    const during = outcomes.filter((o) => o.at + o.ms >= marks.frozen && o.at < marks.thawed);
    const latency = summarize(during.map((o) => o.ms));
    const missing = await missingRows(ctx.db, tokensOf(outcomes));
    const overLimit = during.filter((o) => o.ms > HANG_LIMIT_MS);
    return verdict('postgres frozen (SIGSTOP) 30 s', {
      [`no request past ${HANG_LIMIT_MS} ms (pool wait + query timeout)`]: overLimit.length === 0,
      // Requests that began and ended inside the freeze (a request may start frozen and finish after the thaw).
      'requests inside the freeze failed closed (503, no token)': during.filter((o) => o.at >= marks.frozen && o.at + o.ms < marks.thawed).every((o) => o.status === 503),
      'no token without a committed row': missing.length === 0,
      'recovered after thaw without a broker restart': broker.alive() && Number.isFinite(marks.firstOkAfterThaw),
    }, {
      requests: outcomes.length,
      statuses: byStatus(outcomes),
      duringFreeze: { requests: during.length, statuses: byStatus(during), latencyMs: latency, overLimit: overLimit.length },
      tokensWithoutRow: missing.length,
      recoveryAfterThawMs: marks.firstOkAfterThaw - marks.thawed,
      ...(broker.alive() ? {} : { brokerExit: { code: broker.child.exitCode, signal: broker.child.signalCode, lastOutput: broker.stderrTail().split('\n').filter((l) => /^\w*error|Emitted|^\s+at Client|code:/.test(l)).slice(-6) } }),
    });
  } finally {
    if (frozen.length) ctx.pg.thaw(frozen);
    await broker.stop();
  }
};
