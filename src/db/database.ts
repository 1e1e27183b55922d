import { Kysely, PostgresDialect } from 'kysely';
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
  onPoolError?: (err: Error) => void;
}

/** A kysely instance over a pg pool with timeouts that make the broker fail fast when Postgres is down. */
export function createDatabase(options: DatabaseOptions): { db: Database; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 1_000,
    application_name: 'tessera',
  });
  // A client whose server went away emits 'error': on the pool when idle, on the client itself when it
  // is checked out between two queries (Postgres' shutdown notice). Without a listener Node would exit,
  // and the broker must answer 503 and recover instead.
  pool.on('error', (err) => options.onPoolError?.(err));
  pool.on('connect', (client) => client.on('error', (err) => options.onPoolError?.(err)));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

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
