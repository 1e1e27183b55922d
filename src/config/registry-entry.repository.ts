import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { IssuerSpec, TaskSpec } from './spec.js';

/** Issuers and tasks are stored alike: a key column and a jsonb spec. */
export interface RegistryEntry<S> {
  key: string;
  spec: S;
  updated_at: Date;
}

interface EntrySpecs {
  issuers: IssuerSpec;
  tasks: TaskSpec;
}
export type EntryKind = keyof EntrySpecs;

const KEY_COLUMN = { issuers: 'id', tasks: 'name' } as const;

// kysely cannot follow a key column whose name differs per table through one generic function. At run
// time the two tables differ only in that name, so queries are typed as on `issuers` and name the key
// column through these two helpers.
const tableOf = (kind: EntryKind) => kind as 'issuers';
const keyOf = (kind: EntryKind) => KEY_COLUMN[kind] as 'id';

/** What a list of issuers or tasks may be narrowed by. */
export interface EntryFilter {
  /** Top-level spec fields that must equal these strings (an issuer's `kind`, a task's `risk`). */
  spec?: Record<string, string | undefined>;
  /** Tasks only: those this workload may ask for (an exact entry, or a `prefix*` it starts with). */
  workload?: string | undefined;
}

/** Issuers or tasks in key order, starting after the key `after`. */
export async function listEntries<K extends EntryKind>(db: Database, kind: K, after: string | undefined, take: number, filter: EntryFilter = {}): Promise<RegistryEntry<EntrySpecs[K]>[]> {
  let q = db.selectFrom(tableOf(kind)).select([sql.ref<string>(keyOf(kind)).as('key'), 'spec', 'updated_at']).orderBy(keyOf(kind)).limit(take);
  if (after !== undefined) q = q.where(keyOf(kind), '>', after);
  for (const [field, value] of Object.entries(filter.spec ?? {})) {
    if (value !== undefined) q = q.where(sql<boolean>`spec->>${field} = ${value}`);
  }
  if (filter.workload !== undefined) {
    // The same rule as CompiledTask.allows, in SQL: `*` only at the end, a plain prefix (no LIKE wildcards).
    q = q.where(sql<boolean>`exists (select 1 from jsonb_array_elements_text(spec->'workloads') w(v)
      where w.v = ${filter.workload} or (right(w.v, 1) = '*' and starts_with(${filter.workload}, left(w.v, -1))))`);
  }
  return (await q.execute()) as RegistryEntry<EntrySpecs[K]>[];
}

/** One issuer or task by its key. */
export async function findEntry<K extends EntryKind>(db: Database, kind: K, key: string): Promise<RegistryEntry<EntrySpecs[K]> | undefined> {
  const row = await db
    .selectFrom(tableOf(kind))
    .select([sql.ref<string>(keyOf(kind)).as('key'), 'spec', 'updated_at'])
    .where(keyOf(kind), '=', key)
    .executeTakeFirst();
  return row as RegistryEntry<EntrySpecs[K]> | undefined;
}

/** Creates or replaces one issuer or task; says which it did. */
export async function upsertEntry<K extends EntryKind>(trx: Database, kind: K, key: string, spec: EntrySpecs[K], now: Date): Promise<{ created: boolean }> {
  const json = JSON.stringify(spec);
  return trx
    .insertInto(tableOf(kind))
    .values({ [keyOf(kind)]: key, spec: json, updated_at: now } as { id: string; spec: string; updated_at: Date })
    .onConflict((oc) => oc.column(keyOf(kind)).doUpdateSet({ spec: json, updated_at: now }))
    // xmax is 0 only on a row this statement inserted: how Postgres tells insert from update in one upsert.
    .returning(sql<boolean>`(xmax = 0)`.as('created'))
    .executeTakeFirstOrThrow();
}

/** Deletes one issuer or task; false when there was none. */
export async function deleteEntry(trx: Database, kind: EntryKind, key: string): Promise<boolean> {
  const result = await trx.deleteFrom(tableOf(kind)).where(keyOf(kind), '=', key).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
