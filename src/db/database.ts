import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';

/** How long a caller waits for a pooled connection before the broker answers 503 instead of hanging. */
const CONNECT_TIMEOUT_MS = 2_000;
/** Upper bound on any one statement; a frozen Postgres must not hold a request past its timeout. */
const STATEMENT_TIMEOUT_MS = 5_000;

export type Database = Kysely<DB>;

export interface DatabaseOptions {
  url: string;
  /** Pool size; a broker needs few connections because each request holds one only for its inserts. */
  maxConnections?: number;
  /** The client-side bound on one statement (default STATEMENT_TIMEOUT_MS + 1 s); tests shorten it. */
  queryTimeoutMs?: number;
  /** The server-side bound on one statement (default STATEMENT_TIMEOUT_MS); migrations raise it. */
  statementTimeoutMs?: number;
  /** How long a statement may wait for a lock (default: no bound beyond the statement timeout). */
  lockTimeoutMs?: number;
  onPoolError?: (err: Error) => void;
  /** What pg_stat_activity shows for these connections (default 'tessera'). */
  applicationName?: string;
  /** Postgres ends a session idle inside a transaction this long (default: no bound). */
  idleInTransactionTimeoutMs?: number;
}

/** A kysely instance over a pg pool with timeouts that make the broker fail fast when Postgres is down. */
export function createDatabase(options: DatabaseOptions): { db: Database; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
    query_timeout: options.queryTimeoutMs ?? (options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS) + 1_000,
    ...(options.lockTimeoutMs !== undefined && { lock_timeout: options.lockTimeoutMs }),
    ...(options.idleInTransactionTimeoutMs !== undefined && { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }),
    application_name: options.applicationName ?? 'tessera',
  });
  // A client whose server went away emits 'error': on the pool when idle, on the client itself when it
  // is checked out between two queries (Postgres' shutdown notice). Without a listener Node would exit,
  // and the broker must answer 503 and recover instead.
  pool.on('error', (err) => options.onPoolError?.(err));
  pool.on('connect', (client) => client.on('error', (err) => options.onPoolError?.(err)));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: guardedPool(pool) }) });
  return { db, pool };
}

/**
 * Statements that start with this comment run as named prepared statements: parsed and planned once per
 * connection instead of on every call. The hot path's statements are long (the mint writes four tables in
 * one statement) and planning them cost about as much Postgres CPU as running them.
 */
export const PREPARED = '/* prepared */ ';
const preparedNames = new Map<string, string>();

/** The name a marked statement is prepared under: the same text, the same name, on every connection. */
function preparedName(text: string): string {
  let name = preparedNames.get(text);
  if (!name) preparedNames.set(text, (name = `tessera_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`));
  return name;
}

/** The transaction status Postgres reports when it is ready for a query: idle, not inside a transaction. */
const SERVER_IDLE = 'I';

/**
 * The pool as kysely sees it, which returns a connection to the pool only when it is known to be clean:
 * - no statement on it outlived the client-side `query_timeout`. The server may still be running that
 *   statement, and if it was inside a transaction, the ROLLBACK queued behind it times out unsent; the
 *   next user's autocommit write would then run inside the abandoned transaction and "succeed" without
 *   ever committing (seen in the Postgres-freeze drill: tokens without grant rows);
 * - the server's last ReadyForQuery said "idle", not "in a transaction" or "failed transaction".
 * Any other connection is destroyed on release; the pool opens a fresh one when it needs to.
 */
function guardedPool(pool: pg.Pool): PostgresPool {
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let timedOut = false;
    let status = SERVER_IDLE;
    // pg parses ReadyForQuery's status byte but does not keep it; its connection emits the message.
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', (msg: { status?: string }) => {
      status = msg.status ?? status;
    });
    const query = ((...args: unknown[]) => {
      const [text, values] = args;
      const call = typeof text === 'string' && text.startsWith(PREPARED) ? [{ name: preparedName(text), text, values }] : args;
      const result = (client.query as (...a: unknown[]) => unknown)(...call);
      if (result instanceof Promise) {
        return result.catch((err: Error) => {
          if (/Query read timeout/.test(err.message)) timedOut = true;
          throw err;
        });
      }
      return result;
    }) as PostgresPoolClient['query'];
    return {
      query,
      release: () => client.release(timedOut || status !== SERVER_IDLE ? new Error('connection not known to be idle: destroyed, not pooled') : undefined),
    };
  };
  return {
    async connect() {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) wrappers.set(client, (wrapper = wrap(client)));
      return wrapper;
    },
    end: () => pool.end(),
  };
}

// ENOENT: a Unix socket whose file is gone (the server stopped).
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENOENT']);

/** The SQLSTATE class of a Postgres error (its code's first two characters: '22' data exception, ...); '' for other errors. */
export const sqlStateClass = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : '';
};

/**
 * An error that one row's values or the checks on them cause: a data exception (22), a constraint
 * (23), a trigger's RAISE (P0). The statement's other rows would go through without that row. Any
 * other error (unreachable, out of disk or memory, a missing column, a privilege, an aborted
 * transaction) is one of the database or of the statement, and every row would get it alike.
 */
export const isRowError = (err: unknown): boolean => ['22', '23', 'P0'].includes(sqlStateClass(err));

/**
 * True when an error means "Postgres is not reachable or not serving" (as opposed to a bad query):
 * connection refused/reset, pool timeout, server shutting down, statement timeout.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string };
  if (e.code && UNAVAILABLE_CODES.has(e.code)) return true;
  // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57014 query_canceled (timeout),
  // 08xxx connection exceptions, 53300 too_many_connections.
  if (e.code && (/^08/.test(e.code) || ['57P01', '57P02', '57P03', '57014', '53300'].includes(e.code))) return true;
  return /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection timeout/i.test(
    e.message,
  );
}
