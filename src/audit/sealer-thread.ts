import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/** A request to the sealer thread: seal at the caller's time, or close the connection and end. */
export type SealRequest = { kind: 'flush'; id: number; now: number } | { kind: 'stop' };
/** What the sealer thread says: it is up, a batch went through, a flush ended, or failed with this error. */
export type SealReply =
  | { kind: 'ready' }
  | { kind: 'progress'; id: number }
  | { kind: 'done'; id: number; sealed: number }
  | { kind: 'failed'; id: number; error: ThreadError };
/** An error as it crosses the thread: its message and name, and pg's fields (code, detail, ...) kept. */
export type ThreadError = { message: string } & Record<string, unknown>;

/** An error of the thread itself (not of a flush), with a code callers and logs can tell apart. */
const threadError = (message: string, code: 'sealer_thread_exited' | 'sealer_thread_hung') => Object.assign(new Error(message), { code });

/** The sealer thread's connection in pg_stat_activity. */
export const SEALER_APPLICATION_NAME = 'tessera-sealer';

/** How long the thread may take to load its modules and say it is ready. */
const START_MS = 60_000;
/**
 * How long a flush may go without a word: the thread reports every batch, and a batch is about eleven
 * statements (begin, read, lock, head, four insert chunks, delete, commit), each bounded by the pool's
 * 6 s query timeout, after up to 2 s to connect. Past this the thread is taken for hung (a blocked
 * loop), ended, and sealing goes in-process.
 */
const SILENCE_MS = 90_000;
/** How long stop() waits for the thread to finish its flush and close its connection before it terminates it. */
const STOP_TIMEOUT_MS = 5_000;
/** Postgres ends a sealer session left idle inside a transaction (a thread stuck mid-batch), releasing its locks. */
const IDLE_IN_TRANSACTION_MS = 10_000;

export interface SealerThreadOptions {
  /** The worker's module; tests pass ones that fail. */
  entry?: URL;
  startMs?: number;
  silenceMs?: number;
}

/**
 * Runs the audit chain's sealing (flushPendingAudit) on a worker thread with its own database
 * connection. Reading staged events back, hashing them and writing the chain took a sixth of the
 * request thread's CPU per mint, and a backlog delayed every request queued behind each batch. Each
 * flush carries the caller's time, so a test clock still decides when events are sealed.
 *
 * The worker imports the broker's TypeScript through tsx, which it registers itself (a worker does not
 * inherit the parent's loader hooks); tsx is resolved here, from this module, not from the working
 * directory. If the thread fails to start, dies or falls silent, it is ended and logged, `alive`
 * turns false and calls in flight are rejected: the caller seals in-process from then on (AuditSealer).
 */
export class SealerThread {
  readonly #worker: Worker;
  readonly #calls = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  readonly #startMs: number;
  readonly #silenceMs: number;
  #next = 0;
  /** Why the thread is no longer used, once it is not. */
  #dead: Error | undefined;
  #ready = false;
  #stopping: Promise<void> | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(
    databaseUrl: string,
    private readonly log: Logger,
    options: SealerThreadOptions = {},
  ) {
    this.#startMs = options.startMs ?? START_MS;
    this.#silenceMs = options.silenceMs ?? SILENCE_MS;
    const entry = options.entry ?? new URL('./sealer.worker.ts', import.meta.url);
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
    this.#worker = new Worker(boot, { eval: true, workerData: { databaseUrl, idleInTransactionMs: IDLE_IN_TRANSACTION_MS }, name: 'tessera-sealer' });
    this.#worker.on('message', (r: SealReply) => this.#heard(r));
    this.#worker.on('error', (err) => this.#giveUp(err));
    // Calls in flight are rejected only once the thread is gone, so that sealing them in-process does
    // not meet the rows a stuck thread still has locked.
    this.#worker.on('exit', (code) => {
      this.#giveUp(threadError(`the sealer thread exited (code ${code})`, 'sealer_thread_exited'));
      for (const c of this.#calls.values()) c.reject(this.#dead!);
      this.#calls.clear();
    });
    this.#arm();
  }

  /** True while flushes go to the thread: it has not failed and is not stopping. */
  get alive(): boolean {
    return !this.#dead && !this.#stopping;
  }

  /** Seals what is staged, as flushPendingAudit(db, now) would; rejects with its error. */
  flush(now: Date): Promise<number> {
    if (!this.alive) return Promise.reject(threadError('the sealer thread is not running', 'sealer_thread_exited'));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#arm();
      this.#worker.postMessage({ kind: 'flush', id, now: now.getTime() } satisfies SealRequest);
    });
  }

  /**
   * Lets the flush in flight finish, closes the thread's connection and ends it; terminates it, with a
   * warning, if that takes longer than STOP_TIMEOUT_MS (a flush then in flight is rejected).
   */
  stop(): Promise<void> {
    if (this.#dead) return Promise.resolve();
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#watchdog);
    this.#worker.ref();
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage({ kind: 'stop' } satisfies SealRequest);
    const force = setTimeout(() => {
      this.log.warn({ waited_ms: STOP_TIMEOUT_MS }, 'the audit sealer thread did not stop in time; terminating it');
      void this.#worker.terminate();
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(force);
  }

  #heard(r: SealReply): void {
    if (r.kind === 'ready') this.#ready = true;
    if (r.kind === 'done' || r.kind === 'failed') {
      const call = this.#calls.get(r.id);
      this.#calls.delete(r.id);
      if (r.kind === 'done') call?.resolve(r.sealed);
      else call?.reject(rebuilt(r.error));
    }
    this.#arm();
  }

  /**
   * Watches for silence while the thread starts or works, and lets it idle otherwise: referenced only
   * while a flush is in flight, so an idle thread keeps no process alive and a busy one is waited for.
   */
  #arm(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    if (!this.alive) return;
    const waiting = this.#calls.size > 0;
    if (waiting) this.#worker.ref();
    else this.#worker.unref();
    if (this.#ready && !waiting) return;
    const [ms, what] = this.#ready ? [this.#silenceMs, 'said nothing for'] : [this.#startMs, 'did not start within'];
    this.#watchdog = setTimeout(() => {
      this.#giveUp(threadError(`the sealer thread ${what} ${ms} ms`, 'sealer_thread_hung'));
      void this.#worker.terminate();
    }, ms);
    this.#watchdog.unref();
  }

  /** Stops using the thread (once): flushes go in-process from now on. */
  #giveUp(err: Error): void {
    if (this.#dead) return;
    this.#dead = err;
    clearTimeout(this.#watchdog);
    if (!this.#stopping) this.log.warn({ err: err.message }, 'the audit sealer thread stopped; sealing in-process from now on');
  }
}

/** The worker's error as an Error again: its message, name and stack as the worker had them, pg's fields beside. */
function rebuilt({ message, name, stack, ...fields }: ThreadError): Error {
  const err = Object.assign(new Error(message), fields);
  if (typeof name === 'string') Object.defineProperty(err, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  if (typeof stack === 'string') err.stack = stack;
  return err;
}

/** A sealer thread, or none (with a warning) if one cannot be created here: the broker then seals in-process. */
export function startSealerThread(databaseUrl: string, log: Logger): SealerThread | undefined {
  try {
    return new SealerThread(databaseUrl, log);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not start the audit sealer thread; sealing in-process');
    return undefined;
  }
}
