import type { AuditEventInput } from './audit-event.js';

/**
 * Authentication failures of one kind from one client on one route, within one window, become two
 * events at most: the first at once (with its request id), and a summary with the count of the rest
 * when the window closes. An unauthenticated flood then grows the chain by a bounded amount.
 */
export const AUTH_FAILURE_WINDOW_MS = 60_000;
/** Distinct keys held per window; past it every new key folds into one overflow key, so memory and events stay bounded. */
export const MAX_AUTH_FAILURE_KEYS = 10_000;
/** The failed check as the log has it, cut short: it names the check, never the credential. */
const MAX_CHECK_CHARS = 300;

/** One refused request: where, which check failed, and from which address. */
export interface AuthFailure {
  path: string;
  check: string;
  client: string;
  requestId: string;
}

interface Window {
  path: string;
  check: string;
  client: string;
  start: number;
  /** Failures after the first, not yet written. */
  more: number;
  lastRequestId: string;
}

// Ids in paths would make every request its own key; the route shape is what matters.
const routeShape = (path: string) => path.replace(/\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=\/|$)/gi, '/:id');

const event = (w: Window, count: number, requestId: string | null, extra: Record<string, unknown>): AuditEventInput => ({
  actor: 'anonymous',
  action: 'auth.failed',
  outcome: 'failure',
  request_id: requestId,
  data: { path: w.path, check: w.check, client: w.client, count, window_start: new Date(w.start).toISOString(), ...extra },
});

/** The in-memory accumulator behind that rule; the sealer stages its summaries before each seal. */
export class AuthFailureSummary {
  #windows = new Map<string, Window>();

  /** Counts a failure at `now`; returns the event to stage at once when it is the first of its window. */
  record(f: AuthFailure, now: Date): AuditEventInput | undefined {
    const start = now.getTime() - (now.getTime() % AUTH_FAILURE_WINDOW_MS);
    let w: Window = { path: routeShape(f.path), check: f.check.slice(0, MAX_CHECK_CHARS), client: f.client, start, more: 0, lastRequestId: f.requestId };
    let key = JSON.stringify([start, w.path, w.check, w.client]);
    if (!this.#windows.has(key) && this.#windows.size >= MAX_AUTH_FAILURE_KEYS) {
      w = { ...w, path: '*', check: '*', client: '*' };
      key = JSON.stringify([start, '*', '*', '*']);
    }
    const open = this.#windows.get(key);
    if (open) {
      open.more++;
      open.lastRequestId = f.requestId;
      return undefined;
    }
    this.#windows.set(key, w);
    return event(w, 1, f.requestId, { first: true });
  }

  /**
   * Takes the summaries of the windows that have closed by `now` (of every window, with `all`, at
   * shutdown) out of memory. Give them back with `restore` if they could not be staged.
   */
  drain(now: Date, all = false): { events: AuditEventInput[]; restore: () => void } {
    const taken: Array<[string, Window]> = [];
    for (const [key, w] of this.#windows) {
      if (all || w.start + AUTH_FAILURE_WINDOW_MS <= now.getTime()) taken.push([key, w]);
    }
    for (const [key] of taken) this.#windows.delete(key);
    const events = taken
      .filter(([, w]) => w.more > 0)
      .map(([, w]) => event(w, w.more, null, { summary: true, window_end: new Date(Math.min(w.start + AUTH_FAILURE_WINDOW_MS, now.getTime())).toISOString(), last_request_id: w.lastRequestId }));
    return {
      events,
      restore: () => {
        for (const [key, w] of taken) {
          const again = this.#windows.get(key);
          if (again) again.more += w.more;
          else this.#windows.set(key, w);
        }
      },
    };
  }
}
