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

  /** Seals everything staged so far (joins a flush already running). */
  flush(): Promise<number> {
    this.#running ??= flushPendingAudit(this.db, this.clock.now())
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
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => {});
  }
}
