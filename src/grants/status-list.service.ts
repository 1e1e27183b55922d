import { sql } from 'kysely';
import { decodeJwt } from 'jose';
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
/** Lists grow in steps of this many entries, so their size says little about how many grants exist. */
const SIZE_STEP = 16_384;
/**
 * Entries past the last index the sequence has handed out: room for the tokens minted until the next
 * publish and for as long as a verifier caches this list (ttl), so a fresh token's index falls inside
 * the list its verifier holds. 65,536 entries cost 8 KiB before compression, almost nothing after.
 */
const HEADROOM_ENTRIES = 65_536;
/**
 * An ended grant's bit stays set until this long after its `exp`. The draft has a token's own expiry
 * decided before its status (an expired token is invalid whatever the list says), so the list needs
 * only unexpired tokens; the margin covers verifiers whose clock tolerance still accepts a token just
 * past `exp`. Without the cut the list scanned every grant that ever ended, every 10 s on every replica.
 */
const EXPIRED_MARGIN_SECONDS = 300;

/** Where a token's status lives (the `status.status_list.uri` claim). */
export const statusListUri = (issuer: string) => `${issuer}/v1/status-lists/${STATUS_LIST_ID}`;

interface StatusListDeps {
  db: Database;
  keys: KeyStore;
  issuer: string;
}

/**
 * Builds, signs and stores the Status List Token: every grant that ended and whose token has not yet
 * expired (see EXPIRED_MARGIN_SECONDS) is INVALID. The list is sized from the index sequence, not from
 * the grants, so tokens minted after this publish still have their index inside it. The stored list is
 * replaced only by a newer one: a replica with a slower clock or a slow query never rolls it back.
 */
export async function publishStatusList(deps: StatusListDeps, now: Date): Promise<{ token: string; entries: number; otherIssuer?: string }> {
  // Beside the list's own read, and best effort: a diagnostic must never hold up or fail a publish.
  const [otherIssuer, { rows }] = await Promise.all([
    liveListOfAnotherIssuer(deps, now).catch(() => undefined),
    sql<{ status_idx: number }>`
      select status_idx from grants
      where status <> 'active' and status_idx is not null and expires_at > ${new Date(now.getTime() - EXPIRED_MARGIN_SECONDS * 1000)}`.execute(deps.db),
  ]);
  const seq = await sql<{ last: number }>`select last_value::integer as last from grant_status_idx_seq`.execute(deps.db);
  const size = Math.ceil((seq.rows[0]!.last + 1 + HEADROOM_ENTRIES) / SIZE_STEP) * SIZE_STEP;
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
  const { token } = await deps.keys.sign('statuslist+jwt', { iss: deps.issuer, ...claims });
  const row = { id: STATUS_LIST_ID, token, issued_at: now, expires_at: new Date((iat + STATUS_LIST_VALIDITY_SECONDS) * 1000) };
  await deps.db
    .insertInto('status_lists')
    .values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet({ token, issued_at: now, expires_at: row.expires_at }).where('status_lists.issued_at', '<', now))
    .execute();
  return { token, entries: size, ...(otherIssuer && { otherIssuer }) };
}

/**
 * The issuer of the stored list when another issuer published it within its ttl: a replica sharing
 * this database under another TESSERA_ISSUER. The list is one row, so the replicas overwrite each
 * other's, and verifiers of either one's tokens then fail closed (the list's `sub` names the other
 * issuer's URI). Replicas must share one issuer; this is how the broker notices that they do not.
 */
async function liveListOfAnotherIssuer(deps: StatusListDeps, now: Date): Promise<string | undefined> {
  const stored = await deps.db.selectFrom('status_lists').select(['token', 'issued_at']).where('id', '=', STATUS_LIST_ID).executeTakeFirst();
  if (!stored || now.getTime() - stored.issued_at.getTime() > STATUS_LIST_TTL_SECONDS * 1000) return undefined;
  let iss: unknown;
  try {
    iss = decodeJwt(stored.token).iss;
  } catch {
    return undefined;
  }
  return typeof iss === 'string' && iss !== deps.issuer ? iss : undefined;
}

/** Whether a list issued at `issuedAt` may still be served at `now` without republishing. */
const servable = (issuedAt: Date, now: Date) => now.getTime() - issuedAt.getTime() < REPUBLISH_AFTER_SECONDS * 1000 && issuedAt <= now;

/**
 * The list this process last republished on request, per database, kept (in flight or done) while it
 * is servable: a burst of GETs that all found the stored list stale gets one publish, including the
 * requests whose read of the stored row raced that publish's commit.
 */
const republished = new WeakMap<Database, { issuedAt: Date; token: Promise<string> }>();

/** The list token to serve: the stored one while fresh, else a new one. Undefined for an unknown list id. */
export async function currentStatusList(deps: StatusListDeps, id: number, now: Date): Promise<string | undefined> {
  if (id !== STATUS_LIST_ID) return undefined;
  const stored = await deps.db.selectFrom('status_lists').select(['token', 'issued_at']).where('id', '=', id).executeTakeFirst();
  if (stored && servable(stored.issued_at, now)) return stored.token;
  const mine = republished.get(deps.db);
  if (mine && servable(mine.issuedAt, now)) return mine.token;
  const token = publishStatusList(deps, now).then((p) => p.token);
  republished.set(deps.db, { issuedAt: now, token });
  token.catch(() => republished.get(deps.db)?.token === token && republished.delete(deps.db));
  return token;
}
