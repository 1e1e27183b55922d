import type { Database } from '../db/database.js';
import { safeEqual, sha256Hex } from '../lib/hash.js';
import { randomSecret } from '../lib/ids.js';

/** Client ids of resource servers carry a prefix so logs and people tell them from workloads. */
const CLIENT_ID_PREFIX = 'rs_';

export interface ResourceServer {
  id: string;
  name: string;
  /** Audiences whose tokens it may introspect; empty means any. */
  audiences: string[];
}

/** Registers a resource server; the secret is returned once and only its SHA-256 is stored. */
export async function createResourceServer(
  db: Database,
  input: { name: string; audiences: string[]; createdBy: string },
  now: Date,
): Promise<ResourceServer & { secret: string }> {
  const id = `${CLIENT_ID_PREFIX}${randomSecret(12)}`;
  const secret = randomSecret(32);
  await db
    .insertInto('resource_servers')
    .values({ id, name: input.name, audiences: input.audiences, secret_sha256: sha256Hex(secret), created_by: input.createdBy, created_at: now })
    .execute();
  return { id, name: input.name, audiences: input.audiences, secret };
}

/** The resource server these client credentials belong to, or undefined (unknown, revoked, wrong secret). */
export async function authenticateResourceServer(db: Database, clientId: string, secret: string): Promise<ResourceServer | undefined> {
  if (!clientId.startsWith(CLIENT_ID_PREFIX)) return undefined;
  const row = await db
    .selectFrom('resource_servers')
    .select(['id', 'name', 'audiences', 'secret_sha256'])
    .where('id', '=', clientId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  // Hash even when the id is unknown, so the answer takes the same time either way.
  const given = sha256Hex(secret);
  if (!safeEqual(given, row?.secret_sha256 ?? '0'.repeat(64)) || !row) return undefined;
  return { id: row.id, name: row.name, audiences: row.audiences };
}
