import { spawnBroker } from '../lib/broker-process.js';
import { sleep } from '../lib/stats.js';
import { byStatus, mint, missingMintEvents, missingRows, tokensOf, type Outcome } from './load.js';
import { verdict, type Drill } from './drill.js';

const MINTS = 1_000;
/** Kill once this share of the clients has its answer: mid-way, with requests at every stage in flight. */
const KILL_AFTER_SHARE = 0.3;
const KILL_DEADLINE_MS = 10_000;

/** SIGKILL during 1,000 concurrent mints (RFC 7523 assertions, fresh jti each): every token received has its row and audit event. */
export const brokerKilled: Drill = async (ctx) => {
  const broker = await spawnBroker({ ...ctx.pg.broker, configDir: ctx.configDir, kek: ctx.kek });
  try {
    const assertions = Array.from({ length: MINTS }, () => ctx.agent.assertion(broker.url));
    const before = Number((await ctx.db.selectFrom('grants').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const t0 = performance.now();
    let answered = 0;
    let killedAt = NaN;
    const all = Promise.all(
      assertions.map(async (a) => {
        const o: Outcome = await mint(broker.url, `Bearer ${a}`, t0);
        answered++;
        return o;
      }),
    );
    while (answered < MINTS * KILL_AFTER_SHARE && performance.now() - t0 < KILL_DEADLINE_MS) await sleep(2);
    const answeredAtKill = answered;
    broker.child.kill('SIGKILL');
    killedAt = performance.now() - t0;
    ctx.log(`SIGKILL after ${answeredAtKill} answers (${Math.round(killedAt)} ms)`);
    const outcomes = await all;
    const tokens = tokensOf(outcomes);
    const missing = await missingRows(ctx.db, tokens);
    const unaudited = await missingMintEvents(ctx.db, tokens);
    const after = Number((await ctx.db.selectFrom('grants').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    return verdict('broker SIGKILL during 1,000 concurrent mints', {
      'killed mid-way (some answered, some not)': answeredAtKill > 0 && answeredAtKill < MINTS,
      'every token a client received has its grant row': missing.length === 0,
      'every token a client received has its grant.minted audit event': unaudited.length === 0,
    }, {
      mints: MINTS,
      killedAfterMs: Math.round(killedAt),
      answeredAtKill,
      statuses: byStatus(outcomes),
      tokensReceived: tokens.length,
      tokensWithoutRow: missing.length,
      tokensWithoutAuditEvent: unaudited.length,
      // Rows committed whose response never reached the client: safe (the grant expires unused).
      rowsWithoutDeliveredToken: after - before - tokens.length,
    });
  } finally {
    await broker.stop();
  }
};
