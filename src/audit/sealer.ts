import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { flushPendingAudit, recordAudit } from './audit-outbox.js';
import { AuthFailureSummary, type AuthFailure } from './auth-failures.js';
import type { SealerThread } from './sealer-thread.js';

/** How long a staged event waits, at most, before it is chained (the window in which it is unsealed). */
export const AUDIT_SEAL_INTERVAL_MS = 250;

/**
 * Chains staged audit events in the background, one flush at a time per process; before each, it
 * stages the summaries of authentication-failure windows that have closed. Given a SealerThread, the
 * chaining runs there, off the thread that answers requests; once that thread has failed, sealing
 * continues in-process.
 */
export class AuditSealer {
  #timer: NodeJS.Timeout | undefined;
  readonly #authFailures = new AuthFailureSummary();
  /** First-occurrence stagings still in flight: a flush waits for them, so it seals what this process saw. */
  readonly #staging = new Set<Promise<void>>();
  #running: Promise<number> | undefined;
  #queued: Promise<number> | undefined;
  #failures = 0;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly thread?: SealerThread,
  ) {}

  /** Where chaining runs now: on the sealer thread while it lives, else on this one (tests read it). */
  get threaded(): boolean {
    return this.thread?.alive ?? false;
  }

  start(intervalMs = AUDIT_SEAL_INTERVAL_MS): void {
    this.#timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  /**
   * Seals everything staged before this call. A flush already running may have read the outbox
   * before those rows committed, so this queues one more flush behind it (callers arriving meanwhile
   * share that one) rather than joining it.
   */
  flush(): Promise<number> {
    if (!this.#running) return (this.#running = this.#seal());
    this.#queued ??= this.#running.catch(() => 0).then(() => {
      this.#queued = undefined;
      return (this.#running = this.#seal());
    });
    return this.#queued;
  }

  /**
   * Counts an authentication failure; the first of its window is staged at once (off the response
   * path), the rest are summarised when the window closes.
   */
  authFailure(f: AuthFailure): void {
    const first = this.#authFailures.record(f, this.clock.now());
    if (!first) return;
    const staged = recordAudit(this.db, first, this.clock.now())
      .catch((e: Error) => this.log.warn({ req_id: f.requestId, err: e.message }, 'could not audit an authentication failure'))
      .finally(() => this.#staging.delete(staged));
    this.#staging.add(staged);
  }

  async #stageSummaries(all: boolean): Promise<void> {
    await Promise.all(this.#staging);
    const { events, restore } = this.#authFailures.drain(this.clock.now(), all);
    // Put back on failure: the counts then go out with the next flush instead of being lost.
    await recordAudit(this.db, events, this.clock.now()).catch((err: Error) => {
      restore();
      throw err;
    });
  }

  /** Chains on the sealer thread while it lives; in-process otherwise, and again if it died in this flush. */
  #chain(now: Date): Promise<number> {
    const thread = this.thread;
    if (!thread?.alive) return flushPendingAudit(this.db, now);
    return thread.flush(now).catch((err: unknown) => {
      if (thread.alive) throw err;
      return flushPendingAudit(this.db, now);
    });
  }

  #seal(all = false): Promise<number> {
    return this.#stageSummaries(all)
      .then(() => this.#chain(this.clock.now()))
      .then((n) => {
        this.#failures = 0;
        return n;
      })
      .catch((err: Error) => {
        // Staged events stay in the outbox and are sealed on a later run: nothing is dropped.
        if (this.#failures++ % 40 === 0) this.log.warn({ err: err.message, failures: this.#failures }, 'audit sealing failed; will retry');
        throw err;
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Stops the timer and seals what is left, open failure windows included. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    // The thread first: its stop is bounded, and a flush it cannot finish is sealed here instead.
    await this.thread?.stop();
    await this.#running?.catch(() => {});
    await this.#queued?.catch(() => {});
    await this.#seal(true).catch(() => {});
  }
}
