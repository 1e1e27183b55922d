import type { Logger } from 'pino';
import { metrics } from '../lib/metrics.js';
import type { NewSignal } from './signal.repository.js';

/** Follow-up runs (continuous re-evaluation after a batch) by result, so a failing hook is seen. */
export const followUps = metrics.counter('tessera_signal_follow_ups_total', 'Runs of the signal follow-up hook (re-evaluation), by result.');

interface FollowUpDeps {
  log: Logger;
  /** The hook (re-evaluating the grants that relied on these subjects); read at each run. */
  onSignals?: ((signals: NewSignal[]) => Promise<void>) | undefined;
}

/**
 * Runs the post-ingestion hook after the batch's response, off the request: a committed batch is
 * accepted whatever re-evaluation does, and a global signal, which re-decides every active grant,
 * does not hold its source's request open. One run at a time; batches that arrive meanwhile are
 * merged into the next run, keeping the newest signal per (type, subject), since re-evaluation
 * reads the stored signals, not these. A failed run is logged and counted, never thrown.
 */
export class SignalFollowUps {
  #pending = new Map<string, NewSignal>();
  #running: Promise<void> | undefined;

  constructor(private readonly deps: FollowUpDeps) {}

  schedule(signals: NewSignal[]): void {
    for (const s of signals) this.#pending.set(`${s.type}\u0000${s.subject}`, s);
    this.#running ??= this.#drain();
  }

  /** Resolves once every batch scheduled so far has been followed up (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    // Yield first, so the response that scheduled this run is written before it starts.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#pending.size) {
      const batch = [...this.#pending.values()];
      this.#pending = new Map();
      try {
        await this.deps.onSignals?.(batch);
        followUps.inc({ result: 'ok' });
      } catch (err) {
        followUps.inc({ result: 'failed' });
        this.deps.log.error({ err: (err as Error).message, signals: batch.length }, 'follow-up of a stored signal batch failed; the signals stay stored, and their grants are re-decided by the next batch about them or the stale-signal sweep');
      }
    }
    this.#running = undefined;
  }
}

const byDeps = new WeakMap<object, SignalFollowUps>();

/** The follow-up queue of one broker (one per deps object). */
export function signalFollowUps(deps: FollowUpDeps): SignalFollowUps {
  let q = byDeps.get(deps);
  if (!q) byDeps.set(deps, (q = new SignalFollowUps(deps)));
  return q;
}
