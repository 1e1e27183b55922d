import type { z } from 'zod';
import { invalidRequest, type FieldIssue } from './errors.js';

/** zod issues as `{ field, reason }` pairs, with the field as a dotted path (`params.amount`). */
export function fieldIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  return error.issues.map((i) => ({
    field: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)',
    reason: i.message,
  }));
}

/** Parses `input` or throws a 400 naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string, prefix = ''): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw invalidRequest(`${what} is invalid.`, fieldIssues(result.error, prefix));
  return result.data;
}
