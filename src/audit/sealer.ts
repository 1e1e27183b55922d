import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { flushPendingAudit } from './audit-outbox.js';

/** How long a staged event waits, at most, before it is chained (the window in which it is unsealed). */
export const AUDIT_SEAL_INTERVAL_MS = 250;

/** Chains staged audit events in the background; one flush at a time per process. */
export class AuditSealer {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #queued: Promise<number> | undefined;
  #failures = 0;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

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

  #seal(): Promise<number> {
    return flushPendingAudit(this.db, this.clock.now())
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

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => {});
  }
}
