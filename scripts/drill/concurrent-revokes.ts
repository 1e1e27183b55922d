import { createDatabase } from '../../src/db/database.js';
import { endGrant, findGrant, insertGrantIfWorkloadActive } from '../../src/grants/grant.repository.js';
import { benchGrant } from '../lib/grant-rows.js';
import { verdict, type Drill } from './drill.js';

const CALLERS = 100;
const ROUNDS = 20;

/**
 * 100 concurrent revokes of one grant through 100 separate connections: exactly one caller ends it
 * (and so emits the one revocation event), the final state is `revoked`. Runs against endGrant until
 * the HTTP revoke endpoint exists; then it should drive that endpoint instead.
 */
export const concurrentRevokes: Drill = async (ctx) => {
  const { db, pool } = createDatabase({ url: ctx.pg.url, maxConnections: CALLERS });
  try {
    // Open every connection first, so the callers race on the row, not on connection set-up.
    const clients = await Promise.all(Array.from({ length: CALLERS }, () => pool.connect()));
    const backends = new Set((await Promise.all(clients.map((c) => c.query<{ pid: number }>('select pg_backend_pid() as pid')))).map((r) => r.rows[0]!.pid));
    for (const c of clients) c.release();

    let roundsWithOneWinner = 0;
    let roundsRevoked = 0;
    let roundsEndedByWinner = 0;
    const winnersPerRound: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const g = benchGrant(new Date());
      await insertGrantIfWorkloadActive(db, g);
      const results = await Promise.all(
        Array.from({ length: CALLERS }, (_, i) => endGrant(db, g.id, { status: 'revoked', by: `admin:drill-${i}`, reason: 'drill', at: new Date() })),
      );
      const winners = results.filter((r) => r !== undefined);
      winnersPerRound.push(winners.length);
      const final = await findGrant(db, g.id);
      if (winners.length === 1) roundsWithOneWinner++;
      if (final?.status === 'revoked') roundsRevoked++;
      if (winners.length === 1 && final?.ended_by === winners[0]!.ended_by) roundsEndedByWinner++;
    }
    return verdict('100 concurrent revokes of one grant', {
      'exactly one caller gets the row back (one event), every round': roundsWithOneWinner === ROUNDS,
      'final state revoked, ended by that caller': roundsRevoked === ROUNDS && roundsEndedByWinner === ROUNDS,
    }, {
      callers: CALLERS,
      rounds: ROUNDS,
      distinctBackends: backends.size,
      winnersPerRound: [...new Set(winnersPerRound)],
      via: 'endGrant (src/grants/grant.repository.ts); move to the HTTP revoke endpoint when it exists',
    });
  } finally {
    await db.destroy();
  }
};
