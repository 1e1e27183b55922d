import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { KeyStore } from '../keys/keystore.js';
import { epochSeconds } from '../lib/clock.js';
import { buildStatusListClaims, TokenStatus } from '../verify/status-list.js';

/** The broker publishes one list; indices come from one sequence. Sharding comes with scale. */
const STATUS_LIST_ID = 1;
/**
 * How long a verifier may cache the list (the token's `ttl`). With the 10 s publish cadence, a
 * revocation reaches a verifier that uses the status list within about 40 s; services that must know
 * at once use introspection.
 */
export const STATUS_LIST_TTL_SECONDS = 30;
/** A list older than this is republished on request, so a replica never serves one past its `ttl`. */
const REPUBLISH_AFTER_SECONDS = 10;
/**
 * `exp` of the list token: a verifier that cannot reach the broker keeps the last list this long, then
 * fails closed. Longer than the ttl so a brief broker outage does not fail every downstream request.
 */
export const STATUS_LIST_VALIDITY_SECONDS = 300;
/** Lists are padded to at least this many entries so their size says little about how many grants exist. */
const MIN_ENTRIES = 16_384;

/** Where a token's status lives (the `status.status_list.uri` claim). */
export const statusListUri = (issuer: string) => `${issuer}/v1/status-lists/${STATUS_LIST_ID}`;

interface StatusListDeps {
  db: Database;
  keys: KeyStore;
  issuer: string;
}

/** Builds, signs and stores the Status List Token from the grants table: every ended grant is INVALID. */
export async function publishStatusList(deps: StatusListDeps, now: Date): Promise<{ token: string; entries: number }> {
  const { rows } = await sql<{ status_idx: number }>`
    select status_idx from grants where status_idx is not null and status <> 'active'`.execute(deps.db);
  const top = await sql<{ max: number | null }>`select max(status_idx) as max from grants`.execute(deps.db);
  const size = Math.max(MIN_ENTRIES, (top.rows[0]?.max ?? 0) + 1);
  const statuses = new Uint8Array(size);
  for (const r of rows) statuses[r.status_idx] = TokenStatus.INVALID;
  const iat = epochSeconds(now);
  const claims = buildStatusListClaims({
    uri: statusListUri(deps.issuer),
    statuses,
    bits: 1,
    iat,
    exp: iat + STATUS_LIST_VALIDITY_SECONDS,
    ttl: STATUS_LIST_TTL_SECONDS,
  });
  const { token } = deps.keys.sign('statuslist+jwt', { iss: deps.issuer, ...claims });
  const row = { id: STATUS_LIST_ID, token, issued_at: now, expires_at: new Date((iat + STATUS_LIST_VALIDITY_SECONDS) * 1000) };
  await deps.db
    .insertInto('status_lists')
    .values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet({ token, issued_at: now, expires_at: row.expires_at }))
    .execute();
  return { token, entries: size };
}

/** The list token to serve: the stored one while fresh, else a new one. Undefined for an unknown list id. */
export async function currentStatusList(deps: StatusListDeps, id: number, now: Date): Promise<string | undefined> {
  if (id !== STATUS_LIST_ID) return undefined;
  const stored = await deps.db.selectFrom('status_lists').select(['token', 'issued_at']).where('id', '=', id).executeTakeFirst();
  if (stored && now.getTime() - stored.issued_at.getTime() < REPUBLISH_AFTER_SECONDS * 1000 && stored.issued_at <= now) return stored.token;
  return (await publishStatusList(deps, now)).token;
}
