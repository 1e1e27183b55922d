import { decodeJwt } from 'jose';
import type { Database } from '../../src/db/database.js';
import { MINT_BODY } from '../lib/identities.js';
import { sleep } from '../lib/stats.js';

/** One client request as a drill sees it: when it started (ms since the drill began), how long, what came back. */
export interface Outcome {
  at: number;
  ms: number;
  /** HTTP status, or 0 when the connection failed or the client gave up. */
  status: number;
  /** The grant id (`jti`) of a token the client received. */
  jti?: string;
  error?: string;
}

/** A client gives up after this long; a drill flags anything near it as a hang. */
export const CLIENT_TIMEOUT_MS = 20_000;

/** One POST /v1/grants; never throws. */
export async function mint(url: string, authorization: string, t0: number): Promise<Outcome> {
  const at = performance.now() - t0;
  try {
    const res = await fetch(`${url}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: MINT_BODY,
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string };
    const jti = body.access_token ? String(decodeJwt(body.access_token).jti) : undefined;
    return { at, ms: performance.now() - t0 - at, status: res.status, ...(jti ? { jti } : {}) };
  } catch (err) {
    return { at, ms: performance.now() - t0 - at, status: 0, error: (err as Error).cause ? String(((err as Error).cause as Error).message) : (err as Error).name };
  }
}

/** `concurrency` clients minting back to back until `stop()` says so (checked between requests). */
export async function closedLoop(concurrency: number, next: () => Promise<Outcome>, stop: () => boolean): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop()) {
        const o = await next();
        outcomes.push(o);
        if (o.status === 0) await sleep(50); // a refused connection returns at once; do not spin
      }
    }),
  );
  return outcomes;
}

/** Grant ids among `jtis` that have no row: tokens a client holds without a committed grant. */
export async function missingRows(db: Database, jtis: string[]): Promise<string[]> {
  if (jtis.length === 0) return [];
  const found = new Set<string>();
  for (let i = 0; i < jtis.length; i += 1000) {
    const rows = await db.selectFrom('grants').select('id').where('id', 'in', jtis.slice(i, i + 1000)).execute();
    for (const r of rows) found.add(r.id);
  }
  return jtis.filter((j) => !found.has(j));
}

/** Grant ids among `jtis` with no `grant.minted` audit event, staged or chained: a token the trail misses. */
export async function missingMintEvents(db: Database, jtis: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (let i = 0; i < jtis.length; i += 1000) {
    const batch = jtis.slice(i, i + 1000);
    for (const table of ['audit_pending', 'audit_events'] as const) {
      const rows = await db.selectFrom(table).select('target_id').where('action', '=', 'grant.minted').where('target_id', 'in', batch).execute();
      for (const r of rows) if (r.target_id) found.add(r.target_id);
    }
  }
  return jtis.filter((j) => !found.has(j));
}

/** Counts outcomes by status (0 = no response). */
export function byStatus(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return counts;
}

export const tokensOf = (outcomes: Outcome[]) => outcomes.flatMap((o) => (o.jti ? [o.jti] : []));
