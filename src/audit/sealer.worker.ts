// The sealer thread's entry (started by SealerThread): chains staged audit events over a connection of
// its own, one flush after another, at the time the broker's clock gave each flush.
import { parentPort, workerData } from 'node:worker_threads';
import { createDatabase } from '../db/database.js';
import { flushPendingAudit } from './audit-outbox.js';
import { SEALER_APPLICATION_NAME, type SealReply, type SealRequest, type ThreadError } from './sealer-thread.js';

const port = parentPort!;
const { databaseUrl, idleInTransactionMs } = workerData as { databaseUrl: string; idleInTransactionMs: number };
// One connection, since flushes run one at a time. An idle connection's error needs no report: the
// pool drops that client and the next flush connects again (or fails, and says why).
const { db } = createDatabase({
  url: databaseUrl,
  maxConnections: 1,
  applicationName: SEALER_APPLICATION_NAME,
  idleInTransactionTimeoutMs: idleInTransactionMs,
  onPoolError: () => {},
});
const send = (r: SealReply) => port.postMessage(r);

/** The error's message, name, stack and own fields (pg's code, detail, hint, table, constraint...). */
function transferable(err: unknown): ThreadError {
  if (!(err instanceof Error)) return { message: String(err) };
  const fields = Object.fromEntries(Object.entries(err).filter(([, v]) => v === null || ['string', 'number', 'boolean'].includes(typeof v)));
  return { ...fields, name: err.name, message: err.message, stack: err.stack };
}

let last: Promise<void> = Promise.resolve();
port.on('message', (m: SealRequest) => {
  if (m.kind === 'stop') {
    last = last.then(() => db.destroy()).finally(() => port.close());
    return;
  }
  last = last.then(() =>
    flushPendingAudit(db, new Date(m.now), undefined, () => send({ kind: 'progress', id: m.id })).then(
      (sealed) => send({ kind: 'done', id: m.id, sealed }),
      (err: unknown) => send({ kind: 'failed', id: m.id, error: transferable(err) }),
    ),
  );
});
send({ kind: 'ready' });
