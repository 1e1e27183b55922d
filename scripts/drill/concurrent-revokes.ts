import { createDatabase } from '../../src/db/database.js';
import { findGrant, insertGrantIfWorkloadActive } from '../../src/grants/grant.repository.js';
import { revokeGrants } from '../../src/grants/revocation.service.js';
import { benchGrant } from '../lib/grant-rows.js';
import { verdict, type Drill } from './drill.js';

const CALLERS = 100;
const ROUNDS = 20;

/**
 * 100 concurrent revokes of one grant through 100 separate connections: exactly one caller ends it
 * (and so emits the one revocation event), the final state is `revoked`. Drives the revocation service
 * the admin revoke endpoint calls, so the events it writes are the real ones.
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
    let roundsWithOneEvent = 0;
    const winnersPerRound: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const g = benchGrant(new Date());
      await insertGrantIfWorkloadActive(db, g);
      const results = await Promise.all(
        Array.from({ length: CALLERS }, (_, i) => revokeGrants(db, { grantIds: [g.id] }, { actor: `admin:drill-${i}`, reason: 'drill' }, new Date())),
      );
      const winners = results.filter((r) => r.length === 1).map((r) => r[0]!);
      const events = await db.selectFrom('security_events').select('grant_id').where('grant_id', '=', g.id).execute();
      if (events.length === 1) roundsWithOneEvent++;
      winnersPerRound.push(winners.length);
      const final = await findGrant(db, g.id);
      if (winners.length === 1) roundsWithOneWinner++;
      if (final?.status === 'revoked') roundsRevoked++;
      if (winners.length === 1 && final?.ended_by === winners[0]!.ended_by) roundsEndedByWinner++;
    }
    return verdict('100 concurrent revokes of one grant', {
      'exactly one caller gets the row back, every round': roundsWithOneWinner === ROUNDS,
      'exactly one revocation event per grant': roundsWithOneEvent === ROUNDS,
      'final state revoked, ended by that caller': roundsRevoked === ROUNDS && roundsEndedByWinner === ROUNDS,
    }, {
      callers: CALLERS,
      rounds: ROUNDS,
      distinctBackends: backends.size,
      winnersPerRound: [...new Set(winnersPerRound)],
      via: 'revokeGrants (src/grants/revocation.service.ts), what POST /v1/admin/grants/{id}/revoke calls',
    });
  } finally {
    await db.destroy();
  }
};
