import { describeError } from './command.js';

/**
 * How long a streamed answer may stay silent before the CLI gives up. Not a limit on the whole
 * operation: a verify of millions of events runs as long as it needs, since the broker sends a
 * progress line every batch, far more often than this.
 */
export const STREAM_IDLE_TIMEOUT_MS = 30_000;

/** Progress on standard error, one line rewritten in place (`\r`), ended by a newline: stdout stays the data. */
export class ProgressLine {
  #shown = false;
  update(text: string): void {
    process.stderr.write(`\r${text}`);
    this.#shown = true;
  }
  done(text: string): void {
    process.stderr.write(`${this.#shown ? '\r' : ''}${text}\n`);
  }
  /** Ends a line that was shown, without a final text (the outcome goes to stdout). */
  end(): void {
    if (this.#shown) process.stderr.write('\n');
  }
}

/**
 * Sends a request and hands each complete line of a streamed answer to `onLine`, awaiting it (so a slow
 * sink slows the read). Throws a readable error for a non-2xx answer, an unreachable broker, or a
 * broker silent for STREAM_IDLE_TIMEOUT_MS.
 */
export async function streamLines(url: URL | string, init: RequestInit, onLine: (line: string) => void | Promise<void>): Promise<void> {
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), STREAM_IDLE_TIMEOUT_MS);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), STREAM_IDLE_TIMEOUT_MS);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: idle.signal });
    } catch (err) {
      throw new Error(`cannot reach the broker at ${new URL(url).origin}: ${(err as Error).cause ?? (err as Error).message}`, { cause: err });
    }
    if (!res.ok || !res.body) throw new Error(describeError(res.status, (await res.json().catch(() => ({}))) as Record<string, unknown>));
    const decoder = new TextDecoder();
    let pending = '';
    try {
      for await (const chunk of res.body) {
        touch();
        const lines = (pending + decoder.decode(chunk, { stream: true })).split('\n');
        pending = lines.pop()!;
        for (const line of lines) if (line) await onLine(line);
      }
    } catch (err) {
      if (idle.signal.aborted) throw new Error(`the broker sent nothing for ${STREAM_IDLE_TIMEOUT_MS / 1000} s; giving up`, { cause: err });
      throw err;
    }
    if (pending) await onLine(pending);
  } finally {
    clearTimeout(timer);
  }
}
