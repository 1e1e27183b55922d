import { z } from 'zod';
import { invalidRequest } from '../../lib/errors.js';

/** A page when the caller names no limit: enough for a screen, small enough for one quick query. */
export const DEFAULT_PAGE_SIZE = 50;
/** The largest page one request may ask for; bigger exports page through with the cursor. */
export const MAX_PAGE_SIZE = 500;

/** The `?limit=&cursor=` query fields every admin list takes. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().max(1024).optional(),
};

/**
 * The cursor of a newest-first list: the (created_at, id) of a page's last row. Both are checked before
 * they reach SQL, so a forged cursor is a 400 naming `cursor`, never a database error.
 */
export const createdAtCursor = z.strictObject({ created_at: z.iso.datetime(), id: z.uuid() });

/** A Postgres bigint (a sequence number, a version) as a decimal string: 18 digits always fit. */
export const BIGINT_TEXT = /^\d{1,18}$/;

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** An opaque cursor: the sort key of the last row of a page, as base64url JSON. */
const encodeCursor = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

function decodeCursor<K>(cursor: string, schema: z.ZodType<K>): K {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw invalidRequest('The cursor is invalid.', [{ field: 'cursor', reason: 'not a cursor this list returned' }]);
  }
}

/**
 * One page of a keyset-paginated list. `fetch` returns up to `take` rows after the given key in the
 * list's order; one row more than asked tells whether there is a next page.
 */
export async function paginate<T, K>(
  page: { limit: number; cursor?: string | undefined },
  cursorSchema: z.ZodType<K>,
  fetch: (after: K | undefined, take: number) => Promise<T[]>,
  keyOf: (row: T) => K,
): Promise<Page<T>> {
  const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, cursorSchema);
  const rows = await fetch(after, page.limit + 1);
  const items = rows.slice(0, page.limit);
  return { items, next_cursor: rows.length > page.limit ? encodeCursor(keyOf(items[items.length - 1]!)) : null };
}
