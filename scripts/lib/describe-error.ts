import { inspect } from 'node:util';

/** An error's stack and, below it, each cause's (a verifier's "could not be checked" hides why). */
export function describeError(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    lines.push(`${depth ? 'caused by: ' : ''}${e instanceof Error ? (e.stack ?? e.message) : inspect(e, { depth: 2 })}`);
  }
  return lines.join('\n');
}
