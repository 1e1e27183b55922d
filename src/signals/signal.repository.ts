import { CompiledQuery } from 'kysely';
import { PREPARED, sqlStateClass, type Database } from '../db/database.js';
import { TurnBatcher } from '../lib/turn-batcher.js';

export interface NewSignal {
  type: string;
  subject: string;
  value: unknown;
  source: string;
  observed_at: Date;
  expires_at: Date | null;
}

export interface StoredSignal extends NewSignal {
  received_at: Date;
}

/** Stores a validated batch in one statement: all of it or none. */
export async function insertSignals(db: Database, signals: NewSignal[], receivedAt: Date): Promise<void> {
  if (!signals.length) return;
  await db
    .insertInto('signals')
    .values(signals.map((s) => ({ ...s, value: JSON.stringify(s.value), received_at: receivedAt })))
    .execute();
}

/** Deletes observations that can no longer matter: older than `before` and superseded or expired. */
export async function purgeSignalsBefore(db: Database, before: Date): Promise<number> {
  const r = await db.deleteFrom('signals').where('observed_at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

type SignalKey = { type: string; subject: string };

/**
 * The newest observation of each (type, subject) pair asked for (of two observed at the same instant,
 * the one received last), for the keys of many requests at once: each key tagged with its request's place.
 */
const LATEST_SIGNALS_SQL = `${PREPARED}
  select k.i, s.type, s.subject, s.value, s.source, s.observed_at, s.expires_at, s.received_at
  from jsonb_to_recordset($1::jsonb) as k(i int, type text, subject text)
  cross join lateral (select * from signals s where s.type = k.type and s.subject = k.subject
    order by s.observed_at desc, s.id desc limit 1) s`;

/** String.prototype.toWellFormed (ES2024, in Node 20; the project's lib is ES2023). */
const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/** Requests per statement at most (each brings one key per registered signal type). */
const MAX_SIGNAL_BATCH = 64;

async function readLatest(db: Database, requests: SignalKey[][]): Promise<StoredSignal[][]> {
  const keys = requests.flatMap((ks, i) => ks.map((k) => ({ i, type: k.type, subject: k.subject })));
  const { rows } = await db.executeQuery<StoredSignal & { i: number }>(CompiledQuery.raw(LATEST_SIGNALS_SQL, [JSON.stringify(keys)]));
  const answers: StoredSignal[][] = requests.map(() => []);
  for (const { i, ...signal } of rows) answers[i]!.push(signal);
  return answers;
}

/**
 * The newest observations a decision reads: the requests that ask in the same turn of the event loop
 * share one statement (TurnBatcher), as their history reads do (HistoryReader). With signal types
 * registered, each mint had paid a round trip of its own for them, beside the shared history read.
 * Each request gets the newest observation of its own keys only; a failed statement fails them all.
 */
export class SignalReader {
  readonly #batcher: TurnBatcher<SignalKey[], StoredSignal[]>;

  constructor(db: Database) {
    // A key Postgres cannot take as jsonb fails the statement with a data exception (class 22): then
    // each request is asked alone, so it costs only the request that brought it (found in review).
    this.#batcher = new TurnBatcher((requests) => readLatest(db, requests), MAX_SIGNAL_BATCH, (err) => sqlStateClass(err) === '22');
  }

  latest(keys: SignalKey[]): Promise<StoredSignal[]> {
    // A key with U+0000 can never match (Postgres stores no such text, so no observation has it), and
    // one with a lone surrogate matches what Postgres made of it as text: U+FFFD, as toWellFormed gives.
    const asked = keys.filter((k) => !k.type.includes('\u0000') && !k.subject.includes('\u0000')).map((k) => ({ type: wellFormed(k.type), subject: wellFormed(k.subject) }));
    return asked.length ? this.#batcher.ask(asked) : Promise.resolve([]);
  }
}
