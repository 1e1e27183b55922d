import type { Request } from 'express';
import type { z } from 'zod';
import { invalidRequest } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';

/**
 * Parses a PUT body as one spec whose key is the URL's `:id`. The body may leave the key out; if it
 * names one, it must be the URL's (a PUT never renames).
 */
export function specFromPut<S extends z.ZodType>(req: Request, schema: S, keyField: string, what: string): z.infer<S> {
  const key = String(req.params.id);
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest(`${what} must be a JSON object.`, [{ field: '(body)', reason: 'expected an object' }]);
  const given = (body as Record<string, unknown>)[keyField];
  if (given !== undefined && given !== key) throw invalidRequest(`${what} is invalid.`, [{ field: keyField, reason: `must be "${key}" (the id in the URL) or left out` }]);
  return parseOrThrow(schema, { ...body, [keyField]: key }, what);
}
