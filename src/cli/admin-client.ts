import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { brokerUrl, call, describeError, UsageError } from './command.js';

/** Options every admin command takes. */
export const adminOptions = {
  'admin-key': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The admin key from --admin-key, TESSERA_ADMIN_KEY, or the demo broker's ./data/admin-key. */
export function adminKey(v: Record<string, unknown>): string {
  const key = (v['admin-key'] as string | undefined) ?? process.env.TESSERA_ADMIN_KEY;
  if (key) return key;
  const demoFile = path.resolve(process.env.TESSERA_DATA_DIR ?? 'data', 'admin-key');
  if (existsSync(demoFile)) return readFileSync(demoFile, 'utf8').trim();
  throw new UsageError('no admin key: give --admin-key or set TESSERA_ADMIN_KEY');
}

/** Calls the admin API under /v1/admin; a non-2xx answer becomes an error explaining it. */
export async function adminRequest(v: Record<string, unknown>, method: string, apiPath: string, body?: unknown): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { authorization: `Bearer ${adminKey(v)}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await call(`${brokerUrl(v)}/v1/admin${apiPath}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status >= 300) throw new Error(describeError(res.status, res.body));
  return res.body;
}

/** A query string from the options that were given. */
export function queryString(params: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, val] of Object.entries(params)) if (val !== undefined && val !== false) q.set(k, String(val));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The path segment of an id (workload ids may hold `/` and `:`). */
export const segment = (id: string) => encodeURIComponent(id);

/** Prints `body` as JSON with --json, else the readable rendering. */
export function output(v: Record<string, unknown>, body: unknown, readable: () => string): void {
  process.stdout.write(v.json ? `${JSON.stringify(body, null, 2)}\n` : readable());
}

/** Tells the reader on stderr how to fetch the next page (stdout stays the table itself). */
export function nextPageHint(body: Record<string, unknown>): void {
  if (body.next_cursor) process.stderr.write(`more: repeat with --cursor ${String(body.next_cursor)}\n`);
}
